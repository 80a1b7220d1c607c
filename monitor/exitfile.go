package monitor

import (
	"strconv"
	"syscall"
	"time"

	"github.com/berth-cri/berth/atomicfile"
)

// Exit is the exit file's content: how the container's init ended. The
// file is JSON (berthd reads it with encoding/json, also after an
// upgrade); the monitor writes it with appendJSON.
type Exit struct {
	// Pid is the container init's pid.
	Pid int `json:"pid"`
	// ExitCode is the exit status, or 128+signal when a signal killed it
	// (the CRI convention).
	ExitCode int32 `json:"exit_code"`
	// Signal is the signal that killed the init, 0 when it exited.
	Signal int `json:"signal,omitempty"`
	// ExitedAt is when the monitor reaped the init.
	ExitedAt time.Time `json:"exited_at"`
	// OOMKilled reports that the kernel OOM killer killed a process of the
	// container's memory cgroup while it ran.
	OOMKilled bool `json:"oom_killed,omitempty"`
}

// appendJSON appends e as encoding/json would marshal it (the time with
// all nine fraction digits, which RFC 3339 parsers accept alike).
func (e *Exit) appendJSON(b []byte) []byte {
	b = append(b, `{"pid":`...)
	b = strconv.AppendInt(b, int64(e.Pid), 10)
	b = append(b, `,"exit_code":`...)
	b = strconv.AppendInt(b, int64(e.ExitCode), 10)
	if e.Signal != 0 {
		b = append(b, `,"signal":`...)
		b = strconv.AppendInt(b, int64(e.Signal), 10)
	}
	b = append(b, `,"exited_at":"`...)
	b = appendTimestamp(b, e.ExitedAt)
	b = append(b, '"')
	if e.OOMKilled {
		b = append(b, `,"oom_killed":true`...)
	}
	return append(b, '}')
}

// exitFromStatus turns the init's wait status into the Exit record.
func exitFromStatus(pid int, ws syscall.WaitStatus, at time.Time, oom bool) *Exit {
	e := &Exit{Pid: pid, ExitedAt: at.UTC(), OOMKilled: oom}
	switch {
	case ws.Signaled():
		e.Signal = int(ws.Signal())
		e.ExitCode = 128 + int32(ws.Signal())
	default:
		e.ExitCode = int32(ws.ExitStatus())
	}
	return e
}

// WriteExitFile writes e to path atomically: a reader sees no file or the
// whole record, even if the machine loses power in between.
func WriteExitFile(path string, e *Exit) error {
	return atomicfile.WriteFile(path, append(e.appendJSON(nil), '\n'), 0o644)
}
