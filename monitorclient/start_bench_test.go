package monitorclient_test

import (
	"os/exec"
	"testing"
)

// BenchmarkMonitorStart times monitorclient.Start for a busybox container with
// runc: the monitor's start, the runtime's create and the report back,
// the part of CreateContainer the monitor adds to. Bundles are made and
// containers removed outside the timer.
func BenchmarkMonitorStart(b *testing.B) {
	requireRunc(b)
	for b.Loop() {
		b.StopTimer()
		c := newCtr(b, []string{"sleep", "1000"}, nil)
		b.StartTimer()
		c.start()
		b.StopTimer()
		exec.Command(runcPath, "--root", c.cfg.RuntimeRoot, "delete", "--force", c.cfg.ID).Run()
		b.StartTimer()
	}
}
