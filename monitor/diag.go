package monitor

import (
	"os"
	"strconv"
	"sync"
	"time"
)

// Diag is the monitor's own diagnostics log: one line per event,
// "<RFC 3339 time> berth-monitor[<pid>] <id>: <message>", written to a
// file (the monitor's stderr, Config.MonitorLogPath). The standard
// library's log package would do, but it links fmt; the monitor's
// messages are plain strings.
type Diag struct {
	mu     sync.Mutex
	w      *os.File
	prefix string
}

// NewDiag writes diagnostics for the monitor of container id to w.
func NewDiag(w *os.File, id string) *Diag {
	return &Diag{w: w, prefix: " berth-monitor[" + strconv.Itoa(os.Getpid()) + "] " + id + ": "}
}

// Print logs the concatenation of parts.
func (d *Diag) Print(parts ...string) {
	n := 64
	for _, p := range parts {
		n += len(p)
	}
	b := appendTimestamp(make([]byte, 0, n), time.Now())
	b = append(b, d.prefix...)
	for _, p := range parts {
		b = append(b, p...)
	}
	b = append(b, '\n')
	d.mu.Lock()
	defer d.mu.Unlock()
	_, _ = d.w.Write(b)
}

// Fatal logs and exits with status 1.
func (d *Diag) Fatal(parts ...string) {
	d.Print(parts...)
	os.Exit(1)
}
