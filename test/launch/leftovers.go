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
// mounts under its roots, veths on its bridge, cgroups below its parent,
// and IP allocations.
func (d *Daemon) hostLeftovers() []string {
	var left []string
	for _, p := range d.processes() {
		left = append(left, fmt.Sprintf("process %d (%s)", p, procName(p)))
	}
	for _, m := range MountsUnder(d.Dir) {
		left = append(left, "mount "+m)
	}
	veths, _ := os.ReadDir(filepath.Join("/sys/class/net", d.opts.Network.Bridge, "brif"))
	for _, v := range veths {
		left = append(left, fmt.Sprintf("veth %s on %s", v.Name(), d.opts.Network.Bridge))
	}
	// The parent is the lane's (kubelet's, on a node); what berthd made
	// below it must be gone.
	for _, dir := range d.cgroupDirs() {
		if filepath.Base(dir) != filepath.Base(d.CgroupParent) {
			left = append(left, "cgroup "+dir)
		}
	}
	ips, _ := os.ReadDir(filepath.Join(d.IPAMDir(), d.opts.Network.Name))
	for _, ip := range ips {
		if n := ip.Name(); n != "lock" && !strings.HasPrefix(n, "last_reserved_ip") {
			left = append(left, "IP allocation "+n)
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
// every hierarchy, deepest last.
func (d *Daemon) cgroupDirs() []string {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	roots = append(roots, "/sys/fs/cgroup")
	var dirs []string
	for _, r := range roots {
		base := filepath.Join(r, d.CgroupParent)
		if _, err := os.Stat(base); err != nil {
			continue
		}
		filepath.WalkDir(base, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
	}
	return dirs
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

// cleanHost removes whatever is left, even after a failed run, so the
// next run (and the other tests on this machine) start clean: kill,
// unmount, drop the bridge and the cgroups, remove the directory.
func (d *Daemon) cleanHost() {
	if pids := d.processes(); len(pids) > 0 {
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(500 * time.Millisecond)
	}
	mounts := MountsUnder(d.Dir)
	for i := len(mounts) - 1; i >= 0; i-- {
		unix.Unmount(mounts[i], unix.MNT_DETACH)
	}
	if _, err := os.Stat(filepath.Join("/sys/class/net", d.opts.Network.Bridge)); err == nil {
		exec.Command("ip", "link", "del", d.opts.Network.Bridge).Run()
	}
	if d.opts.CgroupDriver == "systemd" {
		// systemd owns the slice; rmdir behind its back would race it.
		exec.Command("systemctl", "stop", d.CgroupParent).Run()
	}
	dirs := d.cgroupDirs()
	for i := len(dirs) - 1; i >= 0; i-- {
		os.Remove(dirs[i])
	}
	// Never RemoveAll through a mount: it would delete the host's files.
	if len(MountsUnder(d.Dir)) == 0 {
		os.RemoveAll(d.Dir)
	} else {
		fmt.Fprintf(os.Stderr, "launch: %s still has mounts; not removed\n", d.Dir)
	}
}
