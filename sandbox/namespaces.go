package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/berth-cri/berth/errdefs"
)

// nsKind is a namespace type a pod gets a new one of.
type nsKind struct {
	name string // under /proc/<pid>/ns and under the pin directory
	flag int    // for unshare(2)
}

var (
	nsNet = nsKind{"net", unix.CLONE_NEWNET}
	nsIPC = nsKind{"ipc", unix.CLONE_NEWIPC}
	nsUTS = nsKind{"uts", unix.CLONE_NEWUTS}
)

// pinNamespaces creates one new namespace of each kind, runs setup inside
// them, and bind-mounts each at dir/<kind>, so the namespaces live on with
// no process in them. It returns the pins by kind name; on error nothing is
// left pinned.
//
// It is done in-process, as containernetworking/plugins' ns test utilities
// do, rather than by a helper binary like CRI-O's pinns: a throwaway
// goroutine locks its OS thread, unshares, pins and returns without
// unlocking, and the Go runtime then ends the thread. No fork, no exec.
// No thread of berthd stays in a pod's namespaces, so unpinning (with the
// pod's processes gone) ends them.
func pinNamespaces(dir string, kinds []nsKind, setup func() error) (map[string]string, error) {
	if len(kinds) == 0 {
		return map[string]string{}, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pin namespaces: %w", err)
	}
	var pins map[string]string
	err := onThrowawayThread(func() (err error) {
		pins, err = pinFromThisThread(dir, kinds, setup)
		return err
	})
	return pins, err
}

// onThrowawayThread runs fn on an OS thread that ends when fn returns, so
// whatever fn did to the thread (unshare) goes with it. It returns only once
// that thread is gone, so no thread of berthd is left in fn's namespaces
// when the caller goes on (and, say, unpins them right away).
func onThrowawayThread(fn func() error) error {
	type result struct {
		tid int
		err error
	}
	done := make(chan result, 1)
	go func() {
		// Never unlocked: returning from a locked goroutine makes the
		// runtime end the thread.
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// The main thread cannot end: a goroutine exiting locked to
			// it leaves it parked for good, still holding fn's
			// namespaces. Keep it while a goroutine that therefore runs
			// elsewhere does the work; this thread changed nothing.
			done <- result{err: onThrowawayThread(fn)}
			runtime.UnlockOSThread()
			return
		}
		done <- result{tid: unix.Gettid(), err: recoverPanic(fn)}
	}()
	r := <-done
	if r.tid != 0 {
		waitThreadGone(r.tid)
	}
	return r.err
}

// recoverPanic runs fn and turns a panic in it into an Internal error and
// a log line: the goroutine that runs it is berthd's own, with no gRPC
// handler above it to recover, so a panic would end berthd.
func recoverPanic(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			logPanic("pin namespaces", r)
			err = errdefs.Recovered(r)
		}
	}()
	return fn()
}

// waitThreadGone waits (briefly: the runtime ends the thread as soon as
// the goroutine returns) until the thread tid has left this process.
func waitThreadGone(tid int) {
	task := fmt.Sprintf("/proc/self/task/%d", tid)
	for i := 0; i < 2000; i++ {
		if _, err := os.Stat(task); errors.Is(err, fs.ErrNotExist) {
			return
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func pinFromThisThread(dir string, kinds []nsKind, setup func() error) (map[string]string, error) {
	flags := 0
	names := make([]string, len(kinds))
	for i, k := range kinds {
		flags |= k.flag
		names[i] = k.name
	}
	if err := unix.Unshare(flags); err != nil {
		return nil, fmt.Errorf("unshare %s namespaces: %w", strings.Join(names, ","), err)
	}
	if setup != nil {
		if err := setup(); err != nil {
			return nil, err
		}
	}
	pins := map[string]string{}
	for _, k := range kinds {
		pin := filepath.Join(dir, k.name)
		if err := bindNamespace("/proc/thread-self/ns/"+k.name, pin); err != nil {
			for _, p := range pins {
				unpin(p)
			}
			return nil, err
		}
		pins[k.name] = pin
	}
	return pins, nil
}

// bindNamespace bind-mounts the namespace file src onto a new file at pin.
func bindNamespace(src, pin string) error {
	f, err := os.OpenFile(pin, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return fmt.Errorf("pin %s: %w", pin, err)
	}
	f.Close()
	if err := unix.Mount(src, pin, "", unix.MS_BIND, ""); err != nil {
		os.Remove(pin)
		return fmt.Errorf("pin %s: bind mount %s: %w", pin, src, err)
	}
	return nil
}

// unpin unmounts a namespace pin and removes its file. The namespace ends
// once nothing else holds it. A pin that is already gone is not an error.
func unpin(pin string) error {
	if err := unmountAndRemove(pin); err != nil {
		return fmt.Errorf("unpin %s: %w", pin, err)
	}
	return nil
}

// unmountAndRemove detaches whatever is mounted on path, then removes
// path (a file or an empty directory). Nothing there is not an error.
func unmountAndRemove(path string) error {
	// Loop: a path mounted twice over (never by us, but cheap to handle)
	// needs two unmounts before it can go.
	for range 8 {
		err := unix.Unmount(path, unix.MNT_DETACH)
		if err == nil {
			continue
		}
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			break // not a mount point (any more), or no such file
		}
		return fmt.Errorf("unmount: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// isPinned reports whether path is a live namespace pin (an nsfs mount).
func isPinned(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// makePinDir makes dir a mount point of its own, unbindable (which also
// makes it private), before any pin goes under it. Private: a pin made in
// it does not propagate to peer mount namespaces, where a copy would keep
// the namespace alive after we unpin ours. Unbindable: a recursive bind of
// a parent (a hostPath mount of /run, say) does not copy the pins into a
// container. CRI-O's pinns does the same. It reports whether it mounted.
func makePinDir(dir string) (bool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("namespace pin dir: %w", err)
	}
	mounted, err := mountinfo.Mounted(dir)
	if err != nil {
		return false, fmt.Errorf("namespace pin dir %s: %w", dir, err)
	}
	if !mounted {
		if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
			return false, fmt.Errorf("namespace pin dir %s: bind mount: %w", dir, err)
		}
	}
	if err := unix.Mount("", dir, "", unix.MS_UNBINDABLE, ""); err != nil {
		if !mounted {
			unix.Unmount(dir, unix.MNT_DETACH)
		}
		return false, fmt.Errorf("namespace pin dir %s: make unbindable: %w", dir, err)
	}
	return !mounted, nil
}

// releasePinDir undoes makePinDir's mount when no pod has pins left in
// dir, so a berthd that stops with no pods leaves no mount behind. With
// pods left, the mount stays: their pins live under it.
func releasePinDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("namespace pin dir: %w", err)
	}
	if len(entries) > 0 {
		return nil
	}
	if mounted, _ := mountinfo.Mounted(dir); !mounted {
		return nil
	}
	if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("namespace pin dir %s: unmount: %w", dir, err)
	}
	return nil
}
