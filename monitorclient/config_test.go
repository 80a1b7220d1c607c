package monitorclient

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/berth-cri/berth/monitor"
)

func TestExitFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "exit")
	if _, err := ReadExitFile(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing exit file: %v, want ErrNotExist", err)
	}
	at := time.Date(2024, 5, 6, 7, 8, 9, 10, time.UTC)
	for _, e := range []*Exit{
		{Pid: 42, ExitCode: 137, Signal: 9, ExitedAt: at, OOMKilled: true},
		{Pid: 1, ExitCode: 7, ExitedAt: at.Add(time.Hour)},
	} {
		// The monitor writes it by hand; berthd reads it with encoding/json.
		if err := monitor.WriteExitFile(path, e); err != nil {
			t.Fatal(err)
		}
		got, err := ReadExitFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if *got != *e || !got.ExitedAt.Equal(e.ExitedAt) {
			t.Fatalf("round trip: %+v, want %+v", got, e)
		}
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Fatalf("temp files left: %v", ents)
	}
}

func TestWaitExitPoll(t *testing.T) {
	path := filepath.Join(t.TempDir(), "exit")
	go func() {
		time.Sleep(50 * time.Millisecond)
		monitor.WriteExitFile(path, &Exit{Pid: 1, ExitCode: 3})
	}()
	ctx := t.Context()
	e, err := WaitExit(ctx, path, 0, nil)
	if err != nil || e.ExitCode != 3 {
		t.Fatalf("WaitExit = %+v, %v", e, err)
	}
}

// The monitor runs with GOMAXPROCS=1; the runtime it starts gets the
// caller's setting back.
func TestMonitorEnvGOMAXPROCS(t *testing.T) {
	for _, tc := range []struct {
		caller, runtime []string
	}{
		{[]string{"PATH=/bin", "GOMAXPROCS=4"}, []string{"PATH=/bin", "GOMAXPROCS=4"}},
		{[]string{"PATH=/bin"}, []string{"PATH=/bin"}},
	} {
		env := monitorEnv(tc.caller)
		if !slices.Contains(env, "GOMAXPROCS=1") || !slices.Contains(env, "BERTH_MONITOR_SYNC_FD=3") {
			t.Fatalf("monitor env %q", env)
		}
		for _, kv := range env {
			if kv == "GOMAXPROCS=4" {
				t.Fatalf("monitor env keeps the caller's GOMAXPROCS: %q", env)
			}
		}
		got := monitor.RuntimeEnv(slices.DeleteFunc(env, func(kv string) bool { return kv == "BERTH_MONITOR_SYNC_FD=3" }))
		if !slices.Equal(got, tc.runtime) {
			t.Fatalf("runtime env %q, want %q", got, tc.runtime)
		}
	}
}
