package stats

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// A container's writable layer is a tree the container shapes: a chain of
// nested directories as deep as it likes, directories of millions of
// entries, symlinks anywhere, renames during the walk. The walk below is
// written here because no library walks such a tree the way a root daemon
// must: fs.WalkDir over os.Root resolves every path from the root again
// (a chain of depth d costs d²), filepath.WalkDir (containers/storage's
// directory.Usage) lstats full paths (as costly, and it fails beyond
// PATH_MAX), and an fts-style walk holding one descriptor per level runs
// out of descriptors on a deep chain.
//
// So: each directory is opened relative to its parent (openat with
// O_NOFOLLOW|O_DIRECTORY, never a path), each entry stat'ed relative to
// its directory (fstatat with AT_SYMLINK_NOFOLLOW): O(1) per entry. At
// most walkWindow directories stay open; a closed ancestor is reopened
// through ".." of its child and must be the same inode it was (a rename
// under the walk ends it, reported partial, rather than leading it out of
// the layer). It stops at its context's end or after maxEntries entries,
// and says so.

// walkWindow is how many directories of the current path stay open.
const walkWindow = 64

// walkHook, set by tests only, runs as the walk enters each directory,
// with its depth (0 is the layer's root).
var walkHook func(depth int)

// diskCount is what a walk counted.
type diskCount struct {
	used, inodes uint64
	// partial, if set, says why the walk stopped early: the counts are
	// then a lower bound.
	partial string
}

type walkLevel struct {
	fd       int // -1 while closed to spare descriptors
	dev, ino uint64
	subdirs  []string // names still to visit
}

type walker struct {
	ctx        context.Context
	maxEntries int
	entries    int
	dev        uint64 // the layer's filesystem; other mounts are not entered
	seen       map[[2]uint64]struct{}
	count      diskCount
	buf        []byte
	stack      []walkLevel
	open       int // directories of stack with an open fd
}

// walkDisk measures dir like du -x: blocks allocated (directories
// included) and inodes, each inode once.
func walkDisk(ctx context.Context, dir string, maxEntries int) (diskCount, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return diskCount{}, &pathErr{"open", dir, err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return diskCount{}, &pathErr{"stat", dir, err}
	}
	w := &walker{ctx: ctx, maxEntries: maxEntries, dev: st.Dev, seen: map[[2]uint64]struct{}{}, buf: make([]byte, 32<<10)}
	defer w.closeAll()
	w.add(&st)
	w.push(fd, &st)
	if err := w.run(); err != nil {
		return diskCount{}, fmt.Errorf("measure %s: %w", dir, err)
	}
	return w.count, nil
}

func (w *walker) run() error {
	if err := w.list(); err != nil {
		return err
	}
	for len(w.stack) > 0 {
		if w.count.partial = w.stopReason(); w.count.partial != "" {
			return nil
		}
		top := &w.stack[len(w.stack)-1]
		if len(top.subdirs) == 0 {
			if err := w.up(); err != nil {
				return err
			}
			continue
		}
		name := top.subdirs[len(top.subdirs)-1]
		top.subdirs = top.subdirs[:len(top.subdirs)-1]
		fd, err := unix.Openat(top.fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			if gone(err) {
				continue // removed or replaced since it was listed
			}
			return &pathErr{"open", name, err}
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return &pathErr{"stat", name, err}
		}
		if st.Dev != w.dev {
			unix.Close(fd) // a mount point (not in a layer): du -x
			continue
		}
		w.push(fd, &st)
		if err := w.list(); err != nil {
			return err
		}
	}
	return nil
}

func (w *walker) stopReason() string {
	if err := w.ctx.Err(); err != nil {
		return fmt.Sprintf("stopped after %d entries: %v", w.entries, context.Cause(w.ctx))
	}
	if w.maxEntries > 0 && w.entries >= w.maxEntries {
		return fmt.Sprintf("stopped at the bound of %d entries", w.maxEntries)
	}
	return ""
}

// push makes fd the current directory and closes the oldest open one
// beyond the window.
func (w *walker) push(fd int, st *unix.Stat_t) {
	w.stack = append(w.stack, walkLevel{fd: fd, dev: st.Dev, ino: st.Ino})
	w.open++
	if walkHook != nil {
		walkHook(len(w.stack) - 1)
	}
	if w.open > walkWindow {
		l := &w.stack[len(w.stack)-w.open]
		unix.Close(l.fd)
		l.fd = -1
		w.open--
	}
}

// up leaves the current directory for its parent, reopening the parent
// through ".." when it was closed: it must be the directory it was.
func (w *walker) up() error {
	n := len(w.stack)
	top := w.stack[n-1]
	if n > 1 && w.stack[n-2].fd < 0 {
		parent := &w.stack[n-2]
		fd, err := unix.Openat(top.fd, "..", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return &pathErr{"open", "..", err}
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil || st.Dev != parent.dev || st.Ino != parent.ino {
			unix.Close(fd)
			// Moved under the walk: what was counted stands.
			w.count.partial = "a directory was moved during the walk"
			w.closeAll()
			return nil
		}
		parent.fd = fd
		w.open++
	}
	unix.Close(top.fd)
	w.open--
	w.stack = w.stack[:n-1]
	return nil
}

// list counts the current directory's entries and keeps its
// subdirectories to visit.
func (w *walker) list() error {
	top := &w.stack[len(w.stack)-1]
	names := make([]string, 0, 64)
	for {
		n, err := unix.Getdents(top.fd, w.buf)
		if err != nil {
			return &pathErr{"read directory", "", err}
		}
		if n <= 0 {
			return nil
		}
		_, _, names = unix.ParseDirent(w.buf[:n], -1, names[:0])
		for _, name := range names {
			w.entries++
			if w.entries&1023 == 0 && w.stopReason() != "" {
				return nil
			}
			var st unix.Stat_t
			if err := unix.Fstatat(top.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				if gone(err) {
					continue
				}
				return &pathErr{"stat", name, err}
			}
			if w.add(&st) && st.Mode&unix.S_IFMT == unix.S_IFDIR {
				top.subdirs = append(top.subdirs, name)
			}
		}
	}
}

// add counts an inode once; it reports whether it was new.
func (w *walker) add(st *unix.Stat_t) bool {
	if st.Mode&unix.S_IFMT != unix.S_IFDIR && st.Nlink > 1 {
		k := [2]uint64{st.Dev, st.Ino}
		if _, dup := w.seen[k]; dup {
			return false // a hard link of one already counted
		}
		w.seen[k] = struct{}{}
	}
	w.count.used += uint64(st.Blocks) * 512
	w.count.inodes++
	return true
}

func (w *walker) closeAll() {
	for i := range w.stack {
		if w.stack[i].fd >= 0 {
			unix.Close(w.stack[i].fd)
		}
	}
	w.stack, w.open = nil, 0
}

func gone(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP)
}

// pathErr names the entry an error is about (its name within its
// directory: the walk never builds a full path).
type pathErr struct {
	op, name string
	err      error
}

func (e *pathErr) Error() string {
	if e.name == "" {
		return e.op + ": " + e.err.Error()
	}
	return e.op + " " + e.name + ": " + e.err.Error()
}

func (e *pathErr) Unwrap() error { return e.err }
