package monitorclient

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// A pidfd checked to be the monitor's is waited on alone: the exit of
// the process wakes WaitExit (no exit file: ErrMonitorGone), and so does
// the caller's context, never a hang. A pid that is not the monitor any
// more is answered from the exit file at once.
func TestWaitExitVerifiedPidfd(t *testing.T) {
	dir := t.TempDir()
	exitFile := filepath.Join(dir, "exit")

	cmd := exec.Command("sleep", "0.3")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go cmd.Wait()
	asked := 0
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := waitExit(ctx, exitFile, cmd.Process.Pid, func() bool { asked++; return true }); !errors.Is(err, ErrMonitorGone) {
		t.Fatalf("the verified process exited without an exit file: %v, want ErrMonitorGone", err)
	}
	if asked != 1 {
		t.Errorf("same asked %d times, want once", asked)
	}

	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleeper.Process.Kill(); sleeper.Wait() }()
	short, stop := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer stop()
	if _, err := waitExit(short, exitFile, sleeper.Process.Pid, func() bool { return true }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled wait on a verified pidfd: %v, want the context's error", err)
	}

	// Not the monitor: the exit file decides, at once.
	if _, err := waitExit(context.Background(), exitFile, sleeper.Process.Pid, func() bool { return false }); !errors.Is(err, ErrMonitorGone) {
		t.Fatalf("a pid that is not the monitor, no exit file: %v, want ErrMonitorGone", err)
	}
	if err := os.WriteFile(exitFile, []byte(`{"exit_code":3,"exited_at":"2026-01-02T03:04:05Z"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e, err := waitExit(context.Background(), exitFile, sleeper.Process.Pid, func() bool { return false })
	if err != nil || e.ExitCode != 3 {
		t.Fatalf("a pid that is not the monitor, an exit file: %+v, %v", e, err)
	}
}
