package launch

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Shutdown removes what the suite left through the CRI, stops berthd and
// lists what is left: the pods and containers it still had, a stop that
// was not clean, a data race a -race berthd reported, and the host's
// leftovers. Monitors get a moment to exit before they count. It cleans
// nothing on the host; Clean does.
func (d *Daemon) Shutdown() []string {
	var left []string
	if d.Runtime != nil && d.proc != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		left = append(left, d.criLeftovers(ctx)...)
		cancel()
	}
	if err := d.Stop(); err != nil {
		left = append(left, fmt.Sprintf("berthd did not stop cleanly: %v", err))
	}
	if d.Conn != nil {
		d.Conn.Close()
		d.Conn, d.Runtime, d.Image = nil, nil, nil
	}
	// A berthd built with -race (make race) reports races in its log.
	if strings.Contains(d.Log(), "WARNING: DATA RACE") {
		left = append(left, fmt.Sprintf("berthd found a data race (see its log, %s)", d.LogPath))
	}
	deadline := time.Now().Add(5 * time.Second)
	host := d.hostLeftovers()
	for len(host) > 0 && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
		host = d.hostLeftovers()
	}
	return append(left, host...)
}

// criLeftovers lists the pods and containers berthd still has after the
// suite (whose specs remove what they make), then removes them so the
// host checks that follow see what berthd itself leaves.
func (d *Daemon) criLeftovers(ctx context.Context) []string {
	var left []string
	cs, err := d.Runtime.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil {
		return []string{fmt.Sprintf("ListContainers: %v", err)}
	}
	for _, c := range cs.Containers {
		left = append(left, fmt.Sprintf("container %.12s (%s) %s", c.Id, c.GetMetadata().GetName(), c.State))
	}
	ps, err := d.Runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return append(left, fmt.Sprintf("ListPodSandbox: %v", err))
	}
	for _, p := range ps.Items {
		left = append(left, fmt.Sprintf("pod %.12s (%s) %s", p.Id, p.GetMetadata().GetName(), p.State))
		if _, err := d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			left = append(left, fmt.Sprintf("StopPodSandbox %.12s: %v", p.Id, err))
		}
		if _, err := d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			left = append(left, fmt.Sprintf("RemovePodSandbox %.12s: %v", p.Id, err))
		}
	}
	return left
}

// hostLeftovers lists what a stopped berthd left on the host: monitors
// and other processes naming its directory, processes in its cgroups,
// mounts under its directory, veths on its bridge, cgroups below its
// parent (and systemd units in it), and IP allocations.
func (d *Daemon) hostLeftovers() []string {
	var left []string
	for _, p := range d.processes() {
		left = append(left, fmt.Sprintf("process %d (%s)", p, procName(p)))
	}
	for _, m := range MountsUnder(d.Dir) {
		left = append(left, "mount "+m)
	}
	if br := d.opts.Network.Bridge; br != "" {
		veths, _ := os.ReadDir(filepath.Join("/sys/class/net", br, "brif"))
		for _, v := range veths {
			left = append(left, fmt.Sprintf("veth %s on %s", v.Name(), br))
		}
	}
	// The parent is the lane's (kubelet's, on a node); what berthd made
	// below it must be gone.
	for _, dir := range d.cgroupDirs() {
		if filepath.Base(dir) != filepath.Base(d.CgroupParent) {
			left = append(left, "cgroup "+dir)
		}
	}
	if d.CgroupDriver == "systemd" {
		for _, u := range unitsIn(d.CgroupParent) {
			left = append(left, "systemd unit "+u)
		}
	}
	if name := d.opts.Network.Name; name != "" {
		ips, _ := os.ReadDir(filepath.Join(d.IPAMDir(), name))
		for _, ip := range ips {
			if n := ip.Name(); n != "lock" && !strings.HasPrefix(n, "last_reserved_ip") {
				left = append(left, "IP allocation "+n)
			}
		}
	}
	return left
}

// processes are those whose command line names the daemon's directory
// (berth-monitor, runtimes) or that sit in its cgroups (containers).
func (d *Daemon) processes() []int {
	seen := map[int]bool{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), d.Dir+"/") {
			seen[pid] = true
		}
	}
	for _, cg := range d.cgroupDirs() {
		b, _ := os.ReadFile(filepath.Join(cg, "cgroup.procs"))
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				seen[pid] = true
			}
		}
	}
	var out []int
	for p := range seen {
		out = append(out, p)
	}
	return out
}

// cgroupDirs lists the daemon's cgroup parent and everything below it in
// every hierarchy, each hierarchy's deepest last.
func (d *Daemon) cgroupDirs() []string {
	var dirs []string
	for _, base := range CgroupsLeft(d.CgroupParent, "") {
		filepath.WalkDir(base, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
	}
	return dirs
}

// cgroupRoot is where cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// CgroupsLeft lists the cgroups matching pattern (e.g. "pod-*"; empty:
// parent itself) below parent in every hierarchy of the node: the v1
// controllers and a hybrid node's unified tree
// (<root>/<hierarchy>/<parent>), and a pure v2 node's single tree
// (<root>/<parent>). A leak check that looks at only one layout passes on
// the other whatever leaks.
func CgroupsLeft(parent, pattern string) []string {
	return cgroupsLeft(cgroupRoot, parent, pattern)
}

func cgroupsLeft(root, parent, pattern string) []string {
	var out []string
	for _, layout := range []string{
		filepath.Join(root, parent, pattern),      // cgroup v2
		filepath.Join(root, "*", parent, pattern), // v1 controllers, hybrid unified
	} {
		m, _ := filepath.Glob(layout)
		for _, p := range m {
			if fi, err := os.Stat(p); err == nil && fi.IsDir() {
				out = append(out, p)
			}
		}
	}
	return out
}

// unitsIn lists the systemd units (pod slices, container scopes) still
// loaded inside a slice parent: a pod's slice is named
// <parent minus .slice>-pod<id>.slice, and its scopes live in it.
func unitsIn(parent string) []string {
	base := strings.TrimSuffix(parent, ".slice")
	out, err := exec.Command("systemctl", "list-units", "--all", "--plain", "--no-legend", "--full", base+"-*").Output()
	if err != nil {
		return nil
	}
	var units []string
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			units = append(units, f[0])
		}
	}
	return units
}

func procName(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

// MountsUnder lists mount points at or below dir, in mountinfo order.
func MountsUnder(dir string) []string {
	infos, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(infos))
	for _, m := range infos {
		out = append(out, m.Mountpoint)
	}
	return out
}

// Clean removes whatever is left, even after a failed run, so the next
// run (and the other tests on this machine) start clean: kill, unmount,
// drop the bridge and the cgroups, remove the directory. Its error says
// what it could not remove.
func (d *Daemon) Clean() error {
	if pids := d.processes(); len(pids) > 0 {
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(500 * time.Millisecond)
	}
	d.opts.Network.RemoveBridge()
	if d.CgroupDriver == "systemd" {
		// systemd owns the slice; rmdir behind its back would race it.
		exec.Command("systemctl", "stop", d.CgroupParent).Run()
	}
	dirs := d.cgroupDirs()
	for i := len(dirs) - 1; i >= 0; i-- {
		os.Remove(dirs[i])
	}
	return RemoveDir(d.Dir)
}

// RemoveDir detaches every mount at or below dir, deepest first (a busy
// mount does not stop the rest), then removes dir, unless a mount is
// still there: RemoveAll through a mount would delete the host's files.
func RemoveDir(dir string) error {
	mounts := MountsUnder(dir)
	for i := len(mounts) - 1; i >= 0; i-- {
		unix.Unmount(mounts[i], unix.MNT_DETACH)
	}
	if left := MountsUnder(dir); len(left) > 0 {
		return fmt.Errorf("%s not removed: still mounted %v", dir, left)
	}
	return os.RemoveAll(dir)
}
