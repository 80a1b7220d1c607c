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
		left = append(left, CRILeftovers(ctx, d.Runtime)...)
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
	return append(left, d.footprint().WaitLeftovers(5*time.Second)...)
}

// CRILeftovers lists the pods and containers a CRI server still has
// after a suite or a bench (which remove what they make), then removes
// them so the host checks that follow see what the server itself leaves.
func CRILeftovers(ctx context.Context, rt runtimeapi.RuntimeServiceClient) []string {
	var left []string
	cs, err := rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil {
		return []string{fmt.Sprintf("ListContainers: %v", err)}
	}
	for _, c := range cs.Containers {
		left = append(left, fmt.Sprintf("container %.12s (%s) %s", c.Id, c.GetMetadata().GetName(), c.State))
	}
	ps, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return append(left, fmt.Sprintf("ListPodSandbox: %v", err))
	}
	for _, p := range ps.Items {
		left = append(left, fmt.Sprintf("pod %.12s (%s) %s", p.Id, p.GetMetadata().GetName(), p.State))
		if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			left = append(left, fmt.Sprintf("StopPodSandbox %.12s: %v", p.Id, err))
		}
		if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			left = append(left, fmt.Sprintf("RemovePodSandbox %.12s: %v", p.Id, err))
		}
	}
	return left
}

// Footprint is where a CRI server on private roots may leave something
// on the host: its directory (roots, sockets, mounts; processes naming
// it), its cgroup parent, its CNI bridge and its IPAM store. berthd's and
// the bench's peers' (CRI-O) are checked and cleaned alike.
type Footprint struct {
	Dir          string
	CgroupParent string // in the driver's form; "" for none
	CgroupDriver string // "cgroupfs" or "systemd"
	Network      Network
	IPAMDir      string // host-local's dataDir of Network
}

func (d *Daemon) footprint() Footprint {
	return Footprint{Dir: d.Dir, CgroupParent: d.CgroupParent, CgroupDriver: d.CgroupDriver,
		Network: d.opts.Network, IPAMDir: d.IPAMDir()}
}

// Leftovers lists what a stopped server left on the host: monitors and
// other processes naming its directory, processes in its cgroups, mounts
// under its directory, veths on its bridge, cgroups below its parent (and
// systemd units in it), and IP allocations.
func (f Footprint) Leftovers() []string {
	var left []string
	for _, p := range f.processes() {
		left = append(left, fmt.Sprintf("process %d (%s)", p, procName(p)))
	}
	for _, m := range MountsUnder(f.Dir) {
		left = append(left, "mount "+m)
	}
	if br := f.Network.Bridge; br != "" {
		veths, _ := os.ReadDir(filepath.Join("/sys/class/net", br, "brif"))
		for _, v := range veths {
			left = append(left, fmt.Sprintf("veth %s on %s", v.Name(), br))
		}
	}
	// The parent is the lane's (kubelet's, on a node); what the server
	// made below it must be gone.
	for _, dir := range f.cgroupDirs() {
		if filepath.Base(dir) != filepath.Base(f.CgroupParent) {
			left = append(left, "cgroup "+dir)
		}
	}
	if f.CgroupDriver == "systemd" && f.CgroupParent != "" {
		for _, u := range unitsIn(f.CgroupParent) {
			left = append(left, "systemd unit "+u)
		}
	}
	if name := f.Network.Name; name != "" && f.IPAMDir != "" {
		ips, _ := os.ReadDir(filepath.Join(f.IPAMDir, name))
		for _, ip := range ips {
			if n := ip.Name(); n != "lock" && !strings.HasPrefix(n, "last_reserved_ip") {
				left = append(left, "IP allocation "+n)
			}
		}
	}
	return left
}

// WaitLeftovers is Leftovers after giving the server's helpers (monitors,
// conmons) up to wait to exit.
func (f Footprint) WaitLeftovers(wait time.Duration) []string {
	deadline := time.Now().Add(wait)
	left := f.Leftovers()
	for len(left) > 0 && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
		left = f.Leftovers()
	}
	return left
}

// processes are those whose command line names the server's directory
// (berth-monitor, conmon, runtimes) or that sit in its cgroups
// (containers).
func (f Footprint) processes() []int {
	seen := map[int]bool{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), f.Dir+"/") {
			seen[pid] = true
		}
	}
	for _, cg := range f.cgroupDirs() {
		b, _ := os.ReadFile(filepath.Join(cg, "cgroup.procs"))
		for _, field := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(field); err == nil {
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

// cgroupDirs lists the server's cgroup parent and everything below it in
// every hierarchy, each hierarchy's deepest last.
func (f Footprint) cgroupDirs() []string {
	if f.CgroupParent == "" {
		return nil
	}
	var dirs []string
	for _, base := range CgroupsLeft(f.CgroupParent, "") {
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
func (d *Daemon) Clean() error { return d.footprint().Clean() }

// Clean kills the footprint's processes, drops its bridge and cgroups
// and removes its directory; its error says what it could not remove.
func (f Footprint) Clean() error {
	if pids := f.processes(); len(pids) > 0 {
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(500 * time.Millisecond)
	}
	f.Network.RemoveBridge()
	if f.CgroupDriver == "systemd" && f.CgroupParent != "" {
		// systemd owns the slice; rmdir behind its back would race it.
		exec.Command("systemctl", "stop", f.CgroupParent).Run()
	}
	dirs := f.cgroupDirs()
	for i := len(dirs) - 1; i >= 0; i-- {
		os.Remove(dirs[i])
	}
	return RemoveDir(f.Dir)
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
