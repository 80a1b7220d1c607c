package stats

import (
	"os"
	"strconv"
	"strings"

	"github.com/opencontainers/cgroups"
)

// procRoot is the proc filesystem the descriptors are counted in.
var procRoot = "/proc"

// files counts the open file descriptors and sockets of the cgroup's
// processes (those in cgroup.procs of it and its children), as cAdvisor
// does: no cgroup file holds them. A pid read from cgroup.procs may exit
// (or, rarely, be reused) before its fd directory is read; a process gone
// is skipped, and a reused pid only misreads this one gauge.
func (r *cgroupReader) files(t *Tasks) {
	dir := r.dir("pids")
	if dir == "" {
		dir = r.dir("memory")
	}
	if dir == "" {
		return
	}
	pids, err := cgroups.GetAllPids(dir)
	if err != nil {
		return // the cgroup went away meanwhile
	}
	for _, pid := range pids {
		fds, sockets := countFDs(procRoot + "/" + strconv.Itoa(pid) + "/fd")
		t.FileDescriptors += fds
		t.Sockets += sockets
	}
}

// countFDs counts the entries of a /proc/<pid>/fd directory and those of
// them that are sockets (links to "socket:[inode]").
func countFDs(dir string) (fds, sockets uint64) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0 // exited, or a kernel thread's
	}
	for _, e := range ents {
		fds++
		target, err := os.Readlink(dir + "/" + e.Name())
		if err == nil && strings.HasPrefix(target, "socket:") {
			sockets++
		}
	}
	return fds, sockets
}

// oomKills is the cgroup's count of processes killed by the OOM killer:
// oom_kill in v2's memory.events, in v1's memory.oom_control (kernel
// 4.13 on). ok is false where the kernel does not count it.
func (r *cgroupReader) oomKills() (n uint64, ok bool) {
	dir, file := r.dir("memory"), "memory.oom_control"
	if r.v2 {
		file = "memory.events"
	}
	if dir == "" {
		return 0, false
	}
	s, err := cgroups.ReadFile(dir, file)
	if err != nil {
		return 0, false
	}
	for _, l := range strings.Split(s, "\n") {
		if v, found := strings.CutPrefix(l, "oom_kill "); found {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
