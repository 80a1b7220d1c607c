package framework

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-cri/berth/test/launch"
)

// teardown stops berthd, then checks that nothing it made outlives the
// test: a mount under the daemon's directory, or a process whose command
// line names it (monitors, containers, runtimes). Leftovers fail the test
// and are then removed, so one failing test does not poison the next.
func (d *Daemon) teardown(t testing.TB) {
	if d.Conn != nil {
		d.Conn.Close()
	}
	if err := d.Stop(t); err != nil {
		t.Errorf("berthd did not stop cleanly: %v", err)
	}
	// A berthd built with -race (make race) reports races on stderr.
	if strings.Contains(d.Log(), "WARNING: DATA RACE") {
		t.Error("berthd found a data race (see its log)")
	}
	if t.Failed() {
		t.Logf("berthd log (%s):\n%s", d.logPath, d.Log())
	}
	if pids := processesUnder(d.Dir); len(pids) > 0 {
		t.Errorf("processes left behind under %s: %v", d.Dir, pids)
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(200 * time.Millisecond)
	}
	mounts := launch.MountsUnder(d.Dir)
	if len(mounts) > 0 {
		t.Errorf("mounts left behind: %v", mounts)
		// Deepest first, detached, so a busy mount does not stop the rest.
		for i := len(mounts) - 1; i >= 0; i-- {
			unix.Unmount(mounts[i], unix.MNT_DETACH)
		}
	}
	if d.CgroupDriver == "systemd" {
		if left := SlicesLeft(d.CgroupParent); len(left) > 0 {
			t.Errorf("systemd units left behind in %s: %v", d.CgroupParent, left)
		}
		stopSlice(d.CgroupParent)
	} else {
		removeCgroup(d.CgroupParent)
	}
	// Never RemoveAll through a mount that is still there: it would
	// delete the mounted (host) files.
	if left := launch.MountsUnder(d.Dir); len(left) > 0 {
		t.Errorf("cannot remove %s: still mounted %v", d.Dir, left)
		return
	}
	os.RemoveAll(d.Dir)
}

// processesUnder finds processes whose command line mentions dir.
func processesUnder(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		if strings.Contains(string(b), dir+"/") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// removeCgroup removes the test's cgroup parent in every hierarchy,
// deepest first; a cgroup still holding a process stays (and the process
// check above has already failed the test).
func removeCgroup(parent string) {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	roots = append(roots, "/sys/fs/cgroup")
	for _, r := range roots {
		base := filepath.Join(r, parent)
		if _, err := os.Stat(base); err != nil {
			continue
		}
		var dirs []string
		filepath.WalkDir(base, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			os.Remove(dirs[i])
		}
	}
}
