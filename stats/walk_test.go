package stats

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// chain makes dir/a/a/.../a, depth deep, with fd-relative calls (its
// paths are far beyond PATH_MAX). rm -rf removes it (os.RemoveAll holds
// a descriptor per level and runs out).
func chain(t testing.TB, dir string, depth int) {
	t.Helper()
	t.Cleanup(func() {
		if out, err := exec.Command("rm", "-rf", filepath.Join(dir, "a")).CombinedOutput(); err != nil {
			t.Errorf("remove the chain: %v: %s", err, out)
		}
	})
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	for range depth {
		if err := unix.Mkdirat(fd, "a", 0o755); err != nil {
			t.Fatal(err)
		}
		next, err := unix.Openat(fd, "a", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		unix.Close(fd)
		fd = next
	}
	unix.Close(fd)
}

// A chain as deep as the container in the issue made (20,000, more than
// the process may open descriptors here): the walk is complete and counts
// every directory. The walk of round 1 took minutes on this (4,000
// levels: 5.5 min); an fd per level runs out of descriptors.
func TestWalkDeepChain(t *testing.T) {
	dir := t.TempDir()
	const depth = 20_000
	chain(t, dir, depth)
	start := time.Now()
	n, err := walkDisk(context.Background(), dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("depth %d: %v", depth, time.Since(start))
	if n.partial != "" || n.inodes != depth+1 {
		t.Errorf("walk = %+v, want %d inodes, complete", n, depth+1)
	}
}

// Hard links count once, symlinks are never followed, other mounts are
// not entered.
func TestWalkCountsEachInodeOnce(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), make([]byte, 8192), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"l1", "l2"} {
		if err := os.Link(filepath.Join(dir, "f"), filepath.Join(dir, l)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/", filepath.Join(dir, "root")); err != nil {
		t.Fatal(err)
	}
	n, err := walkDisk(context.Background(), dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n.inodes != 3 || n.used < 8192 || n.used > 8192+3*4096+8192 {
		t.Errorf("walk = %+v, want 3 inodes (dir, f, symlink), about 8 KiB", n)
	}
}

// The bound of entries stops a walk, which says so; what it counted is a
// lower bound.
func TestWalkBoundOfEntries(t *testing.T) {
	dir := t.TempDir()
	for i := range 3000 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprint(i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	n, err := walkDisk(context.Background(), dir, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(n.partial, "1000 entries") || n.inodes < 500 || n.inodes > 1100 {
		t.Errorf("walk = %+v, want partial at about 1000 of 3001", n)
	}
	full, err := walkDisk(context.Background(), dir, 0)
	if err != nil || full.partial != "" || full.inodes != 3001 {
		t.Errorf("unbounded walk = %+v, %v; want 3001 inodes", full, err)
	}
}

// A directory moved while the walk is below it (and its ancestors'
// descriptors are closed) ends the walk, partial, instead of leading it
// up and out of the layer through "..".
func TestWalkMovedDirectoryEndsIt(t *testing.T) {
	top := t.TempDir()
	dir := filepath.Join(top, "layer")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Outside the layer: had the walk left it, these would count.
	for i := range 50 {
		os.WriteFile(filepath.Join(top, fmt.Sprint("outside", i)), nil, 0o644)
	}
	chain(t, dir, 2*walkWindow)
	moved := false
	walkHook = func(depth int) {
		if depth == 2*walkWindow && !moved {
			// Move the subtree from depth 10 to the layer's root: its
			// ".." is now the root, not the directory of depth 9.
			src := filepath.Join(dir, strings.Repeat("a/", 10))
			if err := os.Rename(src, filepath.Join(dir, "b")); err != nil {
				t.Error(err)
			}
			moved = true
		}
	}
	defer func() { walkHook = nil }()
	n, err := walkDisk(context.Background(), dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !moved || !strings.Contains(n.partial, "moved") || n.inodes > 2*walkWindow+1 {
		t.Errorf("walk = %+v (moved %v), want partial, at most the %d directories of the layer", n, moved, 2*walkWindow+1)
	}
}

// layerCollector is a collector of one container "c" whose writable
// layer is dir.
func layerCollector(t *testing.T, dir string, o Options) *Collector {
	t.Helper()
	root := t.TempDir()
	fakeV2(t, root, "/p/c", 1000, 1<<20, 0, 0)
	v2 := true
	o.CgroupRoot, o.CgroupV2 = root, &v2
	o.WritableLayer = func(string) (string, string, error) { return dir, "/graph", nil }
	return New(o)
}

// gateWalks makes every walk wait for release once it has entered the
// layer's root; entered receives each time one does.
func gateWalks(t *testing.T) (entered chan struct{}, release func()) {
	entered = make(chan struct{}, 100)
	gate := make(chan struct{})
	walkHook = func(depth int) {
		if depth == 0 {
			entered <- struct{}{}
			<-gate
		}
	}
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(func() { release(); time.Sleep(10 * time.Millisecond); walkHook = nil })
	return entered, release
}

// Callers asking while a walk runs share it (one walk), the sample is
// stamped when it ends, and the cgroup part of the sample is not held up
// by it: a caller whose context ends leaves with its error at once.
func TestWalkSharedAndCallersLeaveOnTheirContext(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), make([]byte, 4096), 0o644)
	c := layerCollector(t, dir, Options{MaxAge: time.Hour})
	entered, release := gateWalks(t)

	results := make(chan error, 5)
	for range 5 {
		go func() {
			s, err := c.Container(context.Background(), "c", "/p/c")
			if err == nil && (s.Disk == nil || s.Disk.Inodes != 2) {
				err = fmt.Errorf("disk %+v, want 2 inodes", s.Disk)
			}
			results <- err
		}()
	}
	<-entered
	// The walk is stuck; a caller with a deadline leaves on it, and
	// never waited for the entry's lock.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Container(ctx, "c", "/p/c"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("caller with a deadline during a stuck walk: %v, want DeadlineExceeded", err)
	}
	before := time.Now()
	release()
	for range 5 {
		if err := <-results; err != nil {
			t.Error(err)
		}
	}
	if w := c.Walks(); w != 1 {
		t.Errorf("%d walks for 6 concurrent callers, want 1", w)
	}
	c.mu.Lock()
	at := c.entries["c"].diskAt
	c.mu.Unlock()
	if at.Before(before) {
		t.Errorf("sample stamped %v, before the walk ended (%v)", at, before)
	}
}

// When every caller has left, the walk stops and its result is not
// kept: the next caller walks afresh.
func TestWalkAbandonedByAllCallersStops(t *testing.T) {
	dir := t.TempDir()
	chain(t, dir, 10)
	c := layerCollector(t, dir, Options{MaxAge: time.Hour})
	entered, release := gateWalks(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Container(ctx, "c", "/p/c")
		done <- err
	}()
	<-entered
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v", err)
	}
	release()
	s, err := c.Container(context.Background(), "c", "/p/c")
	if err != nil || s.Disk == nil || s.Disk.Partial != "" || s.Disk.Inodes != 11 {
		t.Errorf("after an abandoned walk: %+v, %v; want a complete walk of 11 directories", s.Disk, err)
	}
	if w := c.Walks(); w != 2 {
		t.Errorf("%d walks, want 2 (the abandoned one, then a fresh one)", w)
	}
}

// A walk cut by its time bound is a partial sample, kept for
// PartialMaxAge so a container that makes walks long does not get one
// every MaxAge.
func TestWalkTimeBoundIsPartialAndKept(t *testing.T) {
	dir := t.TempDir()
	chain(t, dir, 10)
	c := layerCollector(t, dir, Options{MaxAge: time.Nanosecond, WalkTime: 20 * time.Millisecond})
	walkHook = func(depth int) {
		if depth == 5 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	defer func() { walkHook = nil }()
	s, err := c.Container(context.Background(), "c", "/p/c")
	if err != nil || s.Disk == nil || !strings.Contains(s.Disk.Partial, "deadline") {
		t.Fatalf("disk %+v, %v; want a partial sample naming the deadline", s.Disk, err)
	}
	walkHook = nil
	if s, err = c.Container(context.Background(), "c", "/p/c"); err != nil || s.Disk.Partial == "" || c.Walks() != 1 {
		t.Errorf("second call: %+v, %v, %d walks; want the partial sample again, one walk", s.Disk, err, c.Walks())
	}
}
