package monitor

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
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
	return writeFileAtomic(path, append(b, '\n'), 0o644)
}

// writeFileAtomic writes a temp file beside path, fsyncs it, renames it
// over path and fsyncs the directory.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: fsync: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("write %s: fsync dir: %w", path, err)
		}
	}
	return nil
}
