package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// A writable layer holding a chain of directories deeper than the
// descriptors the process may open (20,000 here; os.RemoveAll, which the
// store uses, fails on it with "too many open files"), beside files, a
// hard link and a symlink out of the tree: emptyTree removes all of it
// and nothing outside.
func TestEmptyTreeDeepChain(t *testing.T) {
	top := t.TempDir()
	dir := filepath.Join(top, "diff")
	outside := filepath.Join(top, "outside")
	for _, d := range []string{dir, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(outside, "keep"), []byte("x"), 0o644)
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20_000 {
		if err := unix.Mkdirat(fd, "a", 0o755); err != nil {
			t.Fatal(err)
		}
		if i%5000 == 0 {
			for j := range 3 {
				f, _ := unix.Openat(fd, fmt.Sprint("f", j), unix.O_CREAT|unix.O_WRONLY, 0o644)
				unix.Close(f)
			}
			unix.Linkat(fd, "f0", fd, "hard", 0)
			unix.Symlinkat(outside, fd, "out")
		}
		next, err := unix.Openat(fd, "a", unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			t.Fatal(err)
		}
		unix.Close(fd)
		fd = next
	}
	unix.Close(fd)
	if err := emptyTree(dir); err != nil {
		t.Fatal(err)
	}
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
		t.Errorf("after emptyTree: %d entries, %v", len(ents), err)
	}
	if _, err := os.Stat(filepath.Join(outside, "keep")); err != nil {
		t.Errorf("a file outside the tree is gone: %v", err)
	}
}
