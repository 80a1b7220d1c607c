package oci

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-cri/berth/ids"
	"github.com/berth-cri/berth/monitorclient"
)

// Exited wakes its waiters only once the exit is on disk: Remove, which
// deletes the record directory next, must not race its writing.
func TestExitedClosesAfterTheRecordIsSaved(t *testing.T) {
	store := newRecordStore(t.TempDir())
	for i := 0; i < 50; i++ {
		id := ids.New()
		c := &Container{
			rec:    Record{Metadata: Metadata{ID: id}, Status: Status{State: StateRunning}},
			exited: make(chan struct{}),
			paths:  paths{store: store, dir: filepath.Join(store.Dir, id)},
		}
		if err := os.MkdirAll(c.paths.dir, 0o700); err != nil {
			t.Fatal(err)
		}
		got := make(chan *Record, 1)
		go func() {
			<-c.exited
			var r Record
			if err := store.Load(id, &r); err != nil {
				t.Error(err)
			}
			got <- &r
		}()
		m := &Manager{}
		_, err := c.recordExit(&monitorclient.Exit{ExitCode: 3}, "")
		if err != nil {
			t.Fatal(err)
		}
		m.exited(context.Background(), c)
		if r := <-got; r == nil || r.State != StateExited || r.ExitCode != 3 {
			t.Fatalf("record on disk when Exited closed: %+v", r)
		}
	}
}
