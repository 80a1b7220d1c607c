package storage

import (
	"sync"
	"testing"

	"github.com/berth-cri/berth/test/testimage"
)

// Two RemoveImage calls for one image both succeed: the image is gone
// either way, so the one that lost the race has nothing to report (as
// kubelet's image GC and critest's parallel removals expect).
func TestConcurrentRemoveOfOneImage(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := t.Context()
	for round := range 5 {
		_, ref, id := e.push(t, "race:1", testimage.Spec{Name: "race"})
		if _, err := e.store.Pull(ctx, ref, Auth{}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			target := ref
			if i%2 == 1 {
				target = id
			}
			wg.Go(func() { errs[i] = e.store.RemoveImage(ctx, target) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("round %d: remover %d: %v", round, i, err)
			}
		}
		if n := countImages(t, e.store); n != 0 {
			t.Fatalf("round %d: %d images left", round, n)
		}
	}
}
