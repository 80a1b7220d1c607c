package monitorclient_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-cri/berth/monitorclient"
)

// A berth-monitor built before restore refuses a restore's config (its
// DecodeConfig knows no restore_image_path; the monitor package's own
// test checks that an unknown key is refused) and exits before running
// anything. berthd must say what is wrong: ErrMonitorTooOld, not "monitor
// exited". The old monitor is played by a script that answers as one did:
// its diagnostic on stderr, exit 1, no sync report.
func TestOldMonitorRefusesRestore(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "berth-monitor")
	script := "#!/bin/sh\nconf=$(cat)\ncase \"$conf\" in *restore_image_path*) echo 'berth-monitor[x]: parse config: monitor config: unknown key \"restore_image_path\"' >&2; exit 1;; esac\nexit 0\n"
	if err := os.WriteFile(old, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(dir, "run")
	if err := os.Mkdir(run, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := monitorclient.Config{
		ID: "restored", Bundle: run, RuntimePath: "/bin/false",
		PidFile: filepath.Join(run, "pid"), ExitFile: filepath.Join(run, "exit"),
		MonitorLogPath:   filepath.Join(run, "monitor.log"),
		RestoreImagePath: filepath.Join(run, "images"), RestoreWorkPath: filepath.Join(run, "work"),
	}
	_, err := monitorclient.Start(context.Background(), old, cfg)
	if !errors.Is(err, monitorclient.ErrMonitorTooOld) || !strings.Contains(err.Error(), old) {
		t.Fatalf("Start with an old monitor: %v, want ErrMonitorTooOld naming %s", err, old)
	}
	t.Logf("berthd says: %v", err)
	// A create with the same monitor is not affected.
	cfg.RestoreImagePath, cfg.RestoreWorkPath = "", ""
	if _, err := monitorclient.Start(context.Background(), old, cfg); errors.Is(err, monitorclient.ErrMonitorTooOld) {
		t.Fatalf("a create's failure reported as an old monitor: %v", err)
	}
}
