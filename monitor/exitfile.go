package monitor

import (
	"encoding/json"
	"fmt"
	"syscall"
	"time"

	"github.com/berth-cri/berth/atomicfile"
)

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

// writeExitFile writes e to path atomically: a reader sees no file or the
// whole record, even if the machine loses power in between.
func writeExitFile(path string, e *Exit) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode exit file: %w", err)
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o644)
}
