package monitorclient

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// pidfdBackstop is how often WaitExit looks at the exit file while it
	// also waits on a pidfd it could not check is the monitor's (the pid
	// may have been reused before the pidfd was opened).
	pidfdBackstop = time.Second
	// pollInterval is how often WaitExit looks without a pidfd.
	pollInterval = 100 * time.Millisecond
)

func waitExit(ctx context.Context, exitFile string, monitorPID int, same func() bool) (*Exit, error) {
	if e, done, err := exitReady(exitFile); done {
		return e, err
	}
	var pidfd *os.File
	if monitorPID > 0 {
		// Non-blocking, so os.NewFile puts it in the runtime's poller and a
		// waiter costs no thread.
		fd, err := unix.PidfdOpen(monitorPID, unix.PIDFD_NONBLOCK)
		if err == nil {
			pidfd = os.NewFile(uintptr(fd), "pidfd")
			defer pidfd.Close()
		} else if errors.Is(err, unix.ESRCH) {
			// Already gone: the file decides.
			if e, done, err := exitReady(exitFile); done {
				return e, err
			}
			return nil, fmt.Errorf("exit file %s: %w", exitFile, ErrMonitorGone)
		}
	}
	if pidfd == nil {
		return pollExit(ctx, exitFile)
	}
	rc, err := pidfd.SyscallConn()
	if err != nil {
		return pollExit(ctx, exitFile)
	}
	// The pidfd pins the process it was opened on: if that is still the
	// monitor now, it is the monitor's for good, and its readiness alone
	// says when the monitor exits. Else the pid may name another process
	// by now, and the exit file is read every pidfdBackstop as well (on a
	// node of 110 pods, 110 failed opens a second, most of an idle
	// berthd's work).
	verified := false
	if same != nil {
		if !same() {
			if e, done, err := exitReady(exitFile); done {
				return e, err
			}
			return nil, fmt.Errorf("exit file %s: %w", exitFile, ErrMonitorGone)
		}
		verified = true
	}
	stop := context.AfterFunc(ctx, func() { _ = pidfd.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	for {
		if e, done, err := exitReady(exitFile); done {
			return e, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// A verified pidfd gets no deadline but ctx's (set by the
		// AfterFunc; never cleared here, which could undo it).
		if !verified {
			if err := pidfd.SetReadDeadline(time.Now().Add(pidfdBackstop)); err != nil {
				// Not pollable after all (no epoll support for pidfds).
				return pollExit(ctx, exitFile)
			}
		}
		err := rc.Read(func(fd uintptr) bool {
			n, _ := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
			return n > 0
		})
		if err == nil {
			// The monitor exited; it writes the file before it does.
			if e, done, err := exitReady(exitFile); done {
				return e, err
			}
			return nil, fmt.Errorf("exit file %s: %w", exitFile, ErrMonitorGone)
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, fmt.Errorf("wait for monitor %d: %w", monitorPID, err)
		}
	}
}

func pollExit(ctx context.Context, exitFile string) (*Exit, error) {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		if e, done, err := exitReady(exitFile); done {
			return e, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// exitReady reads the exit file; done is false while it does not exist.
func exitReady(exitFile string) (*Exit, bool, error) {
	e, err := ReadExitFile(exitFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	return e, true, err
}
