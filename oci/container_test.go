package oci

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/berth-cri/berth/monitor"
)

// Exited wakes its waiters only once the exit is on disk: Remove, which
// deletes the record directory next, must not race its writing.
func TestExitedClosesAfterTheRecordIsSaved(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 50; i++ {
		c := &Container{
			rec:    Record{ID: testID(), State: StateRunning},
			exited: make(chan struct{}),
			paths:  paths{dir: filepath.Join(dir, strconv.Itoa(i))},
		}
		if err := os.MkdirAll(c.paths.dir, 0o700); err != nil {
			t.Fatal(err)
		}
		got := make(chan *Record, 1)
		go func() {
			<-c.exited
			r, _ := loadRecord(c.paths.record())
			got <- r
		}()
		m := &Manager{}
		c.mu.Lock()
		_, err := c.recordExit(&monitor.Exit{ExitCode: 3}, "")
		c.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		m.exited(context.Background(), c)
		if r := <-got; r == nil || r.State != StateExited || r.ExitCode != 3 {
			t.Fatalf("record on disk when Exited closed: %+v", r)
		}
	}
}
