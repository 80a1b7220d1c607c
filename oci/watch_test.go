package oci

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/berth-cri/berth/ids"
)

// A panic in an exit watcher, a goroutine of berthd's own with no gRPC
// handler above it, is logged and does not end berthd. The panic here is
// a real one of the watcher's code: recording the exit of a container
// whose exited channel was never made.
func TestExitWatcherRecoversPanic(t *testing.T) {
	hook := logtest.NewGlobal()
	defer hook.Reset()
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	m := &Manager{ctrs: map[string]*Container{}}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	defer m.cancel()
	c := &Container{
		rec:   Record{Metadata: Metadata{ID: ids.New()}, Status: Status{State: StateRunning, MonitorPID: gone.Process.Pid}},
		paths: paths{dir: dir, run: dir, exit: filepath.Join(dir, "exit")},
	}
	m.watch(c)
	m.wg.Wait() // without the recover, the test binary is dead by now
	for _, e := range hook.AllEntries() {
		if e.Level == logrus.ErrorLevel && strings.Contains(e.Message, "exit watcher") && strings.Contains(e.Message, "panic") {
			return
		}
	}
	t.Errorf("no log line for the watcher's panic; got %d entries", len(hook.AllEntries()))
}
