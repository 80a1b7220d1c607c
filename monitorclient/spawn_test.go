package monitorclient_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/berth-cri/berth/monitorclient"
)

// A monitor spawned ahead of its container runs it once handed the
// config, like one Start spawns.
func TestSpawnedThenStarted(t *testing.T) {
	c := newCtr(t, []string{"sh", "-c", "echo early"}, nil)
	sp, err := monitorclient.Spawn(monitorBin, c.cfg.ID, c.cfg.MonitorLogPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sp.Discard)
	waitFor(t, "spawned monitor", func() bool { return findProc(c.cfg.ID) > 0 })
	st, err := sp.Start(context.Background(), c.cfg)
	if err != nil {
		t.Fatal(err)
	}
	sp.Discard() // after Start: nothing
	if !isMonitor(st.MonitorPID, c.cfg.ID) {
		t.Fatalf("pid %d is not a running monitor after Discard", st.MonitorPID)
	}
	if st.RuntimeTime <= 0 {
		t.Errorf("runtime create time %v", st.RuntimeTime)
	}
	c.run()
	if e := c.wait(); e.ExitCode != 0 {
		t.Fatalf("exit %+v", e)
	}
	if got := stream(records(t, c.log()), "stdout"); strings.Join(got, "|") != "stdout F early" {
		t.Errorf("stdout records %q", got)
	}
}

// A spawned monitor that is never given a container exits, quietly, when
// discarded; so does one handed another container's config.
func TestSpawnedDiscardedOrMismatched(t *testing.T) {
	c := newCtr(t, []string{"true"}, nil)
	sp, err := monitorclient.Spawn(monitorBin, c.cfg.ID, c.cfg.MonitorLogPath)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "spawned monitor", func() bool { return findProc(c.cfg.ID) > 0 })
	sp.Discard()
	if pid := findProc(c.cfg.ID); pid > 0 {
		t.Fatalf("discarded monitor %d (%s) still runs", pid, cmdline(pid))
	}
	if b, _ := os.ReadFile(c.cfg.MonitorLogPath); len(b) > 0 {
		t.Errorf("a discarded monitor logged %q", b)
	}

	sp, err = monitorclient.Spawn(monitorBin, c.cfg.ID, c.cfg.MonitorLogPath)
	if err != nil {
		t.Fatal(err)
	}
	other := c.cfg
	other.ID = randHex(32)
	if _, err := sp.Start(context.Background(), other); err == nil || !strings.Contains(err.Error(), "spawned for") {
		t.Fatalf("Start with another container's config = %v", err)
	}
	if pid := findProc(c.cfg.ID); pid > 0 {
		t.Fatalf("refused monitor %d (%s) still runs", pid, cmdline(pid))
	}
	if _, err := os.Stat(c.cfg.PidFile); err == nil {
		t.Error("a refused monitor ran the runtime")
	}
}
