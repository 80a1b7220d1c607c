package oci

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// countRuntimeCalls puts a wrapper in front of the test runtime that
// notes each call's subcommand, and returns a function that reads them.
func countRuntimeCalls(t *testing.T, e *testEnv) func() []string {
	t.Helper()
	dir := t.TempDir()
	log := filepath.Join(dir, "calls")
	wrapper := filepath.Join(dir, "runtime")
	script := fmt.Sprintf("#!/bin/sh\nfor a; do case $a in create|start|exec|kill|delete|state|update) echo $a >> %s; break;; esac; done\nexec %s \"$@\"\n", log, e.rt.Path)
	must(t, os.WriteFile(wrapper, []byte(script), 0o755))
	e.rt.Path = wrapper
	return func() []string {
		b, _ := os.ReadFile(log)
		return strings.Fields(string(b))
	}
}

// callsAfter is the calls made after the first n.
func callsAfter(calls []string, n int) string { return strings.Join(calls[n:], " ") }

// StopContainer sends the stop signal through the container's monitor:
// the runtime is called once, for the exit watcher's delete; SIGTERM
// first, SIGKILL after the grace period, as ever.
func TestStopOneRuntimeCall(t *testing.T) {
	e := newTestEnv(t)
	calls := countRuntimeCalls(t, e)
	ctx := context.Background()
	term := e.create(t, &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "term"},
		Command: []string{"sh", "-c", "trap 'exit 143' TERM; sleep 60 & wait"}})
	must(t, e.m.Start(ctx, term))
	time.Sleep(500 * time.Millisecond) // the trap is set
	n := len(calls())
	must(t, e.m.Stop(ctx, term, 10*time.Second))
	if r := waitExited(t, term); r.ExitCode != 143 {
		t.Errorf("stopped with SIGTERM: exit %d, want 143 from the trap", r.ExitCode)
	}
	if got := callsAfter(calls(), n); got != "delete" {
		t.Errorf("runtime calls of a stop: %q, want the exit watcher's delete only", got)
	}

	// A container ignoring SIGTERM is killed when the grace period ends.
	stubborn := e.create(t, &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "stubborn"},
		Command: []string{"sh", "-c", "trap '' TERM; sleep 60 & wait"}})
	must(t, e.m.Start(ctx, stubborn))
	time.Sleep(500 * time.Millisecond)
	n = len(calls())
	start := time.Now()
	must(t, e.m.Stop(ctx, stubborn, time.Second))
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("killed after %s, before the grace period of 1s", waited)
	}
	if r := waitExited(t, stubborn); r.ExitCode != 128+int32(syscall.SIGKILL) {
		t.Errorf("killed after the grace period: exit %d, want 137", r.ExitCode)
	}
	if got := callsAfter(calls(), n); got != "delete" {
		t.Errorf("runtime calls of a stop that kills: %q, want the exit watcher's delete only", got)
	}
}

// A container whose monitor predates the signal request is stopped by
// the runtime's kill, as before.
func TestStopFallsBackForOldMonitor(t *testing.T) {
	e := newTestEnv(t)
	calls := countRuntimeCalls(t, e)
	ctx := context.Background()
	c := e.create(t, &runtimeapi.ContainerConfig{Command: []string{"sh", "-c", "trap 'exit 143' TERM; sleep 60 & wait"}})
	must(t, e.m.Start(ctx, c))
	time.Sleep(500 * time.Millisecond)
	ctl := c.paths.control()
	must(t, os.Rename(ctl, ctl+".real"))
	t.Cleanup(func() { os.Remove(ctl); os.Rename(ctl+".real", ctl) })
	reqs := serveOldControl(t, ctl)
	n := len(calls())
	must(t, e.m.Stop(ctx, c, 10*time.Second))
	if r := waitExited(t, c); r.ExitCode != 143 {
		t.Errorf("stopped with SIGTERM: exit %d, want 143 from the trap", r.ExitCode)
	}
	if req := <-reqs; req != "signal 15" {
		t.Errorf("the old monitor was asked %q", req)
	}
	if got := callsAfter(calls(), n); got != "kill delete" {
		t.Errorf("runtime calls of a stop past an old monitor: %q, want kill and delete", got)
	}
}

// A VM runtime's container process is not the monitor's child: its stop
// signal goes through the runtime.
func TestStopVMRuntimeUsesKill(t *testing.T) {
	e := newTestEnv(t)
	calls := countRuntimeCalls(t, e)
	e.rt.VM = true // runc standing in: only the stop path is looked at
	ctx := context.Background()
	c := e.create(t, &runtimeapi.ContainerConfig{Command: []string{"sh", "-c", "trap 'exit 143' TERM; sleep 60 & wait"}})
	must(t, e.m.Start(ctx, c))
	time.Sleep(500 * time.Millisecond)
	n := len(calls())
	must(t, e.m.Stop(ctx, c, 10*time.Second))
	if r := waitExited(t, c); r.ExitCode != 143 {
		t.Errorf("stopped with SIGTERM: exit %d, want 143 from the trap", r.ExitCode)
	}
	if got := callsAfter(calls(), n); got != "kill delete" {
		t.Errorf("runtime calls of a VM runtime's stop: %q, want kill and delete", got)
	}
}
