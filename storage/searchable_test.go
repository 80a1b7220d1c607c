package storage

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A layer directory round 1 opened to every user (o+x, for a
// user-namespaced container) is closed again when the store opens;
// directories that were not opened, and the l/ links directory, are left
// as they are (issue 23, item 3).
func TestOpenClosesLayersOpenedToEveryone(t *testing.T) {
	e := newEnv(t, envOptions{})
	graph := e.store.store.GraphRoot()
	opened := filepath.Join(graph, "overlay", strings.Repeat("a", 64))
	closed := filepath.Join(graph, "overlay", strings.Repeat("b", 64))
	pod := filepath.Join(graph, "overlay", strings.Repeat("c", 64))
	for dir, mode := range map[string]os.FileMode{opened: 0o701, closed: 0o700, pod: 0o710} {
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
	}
	e.store.store.Shutdown(true)
	s := openTestStore(t, e.store.opts)
	_ = s
	for dir, want := range map[string]os.FileMode{opened: 0o700, closed: 0o700, pod: 0o710} {
		st, err := os.Stat(dir)
		if err != nil || st.Mode().Perm() != want {
			t.Errorf("%s after reopening: %v %v, want %v", filepath.Base(dir)[:4], st.Mode().Perm(), err, want)
		}
	}
	if st, err := os.Stat(filepath.Join(graph, "overlay", "l")); err == nil && st.Mode().Perm()&0o001 == 0 {
		t.Errorf("l/ lost its mode: %v", st.Mode().Perm())
	}
}
