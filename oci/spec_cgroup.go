package oci

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-cri/berth/cgroupdriver"
)

// annotationSystemdSubgroup is crun's run.oci.systemd.subgroup: with the
// systemd driver on cgroup v2, crun before 1.22 puts the container in a
// "container" sub-cgroup of its scope and its limits there, unless this
// says "" (newer crun makes none by default). Berth sets it empty so every
// runtime puts the container and its limits in the scope itself, as runc
// does: the cgroup stats, updates and kubelet read.
const annotationSystemdSubgroup = "run.oci.systemd.subgroup"

// setCgroupAnnotations adds what runtimes need to place a container of the
// pod whose cgroup is podCgroup; a request cannot override it.
func setCgroupAnnotations(podCgroup string, a map[string]string) {
	if cgroupdriver.Of(podCgroup) == cgroupdriver.Systemd {
		a[annotationSystemdSubgroup] = ""
	}
}

// setCgroupDelegation mounts /sys/fs/cgroup read-write for a container of
// a user-namespaced pod on cgroup v2 whose handler has cgroup_writable.
// The runtime sees a read-write cgroupfs in a cgroup namespace with a user
// namespace and delegates the cgroup: it chowns the container's cgroup
// and the files /sys/kernel/cgroup/delegate lists to the container's user
// (runc's specconv and crun do), who can then make and fill cgroups below
// its own but not change the limits set on it, which stay root's. Without
// a user namespace the container's root is the node's and would ignore
// those file modes, so the mount stays read-only whatever the handler says;
// on cgroup v1 there is no delegation to give.
//
// The runtimes do not all delegate: runc's libcontainer (berth-runner)
// chowns only through its systemd driver, and only where it can read the
// mappings, so Berth chowns the container's cgroup itself
// (delegateCgroup), on either driver, to the node id of the container's
// user; Generated.Delegation carries what it needs.
func setCgroupDelegation(o *SpecOptions, g *Generated) error {
	if !o.CgroupWritable || o.Pod.UserNS == nil || !o.Host.CgroupV2 {
		return nil
	}
	owner, ok := hostIDOf(o.Pod.UserNS.UIDs, g.Spec.Process.User.UID)
	if !ok {
		return invalidf("user %d is not mapped in the pod's user namespace", g.Spec.Process.User.UID)
	}
	rel, err := cgroupdriver.ContainerPath(o.Pod.CgroupParent, o.ID)
	if err != nil {
		return err
	}
	for i := range g.Spec.Mounts {
		if m := &g.Spec.Mounts[i]; m.Type == "cgroup" && m.Destination == "/sys/fs/cgroup" {
			m.Options = replaceOption(m.Options, "ro", "rw")
		}
	}
	g.Delegation = &Delegation{Dir: filepath.Join(cgroupV2Root, rel), Owner: owner}
	return nil
}

// Delegation is a container cgroup to hand to the container's user.
type Delegation struct {
	// Dir is the container's cgroup directory; the runtime makes it.
	Dir string
	// Owner is the node id of the container's user.
	Owner uint32
}

// hostIDOf is the node id of id in the namespace mapped by maps.
func hostIDOf(maps []IDMap, id uint32) (uint32, bool) {
	for _, m := range maps {
		if id >= m.ContainerID && id-m.ContainerID < m.Size {
			return m.HostID + (id - m.ContainerID), true
		}
	}
	return 0, false
}

// delegateCgroup chowns the container's cgroup directory and the files the
// kernel lists for delegation (/sys/kernel/cgroup/delegate: cgroup.procs,
// cgroup.subtree_control, cgroup.threads, ...) to its owner, after the
// runtime made the cgroup and before the container runs; the limit files
// stay root's. opencontainers/cgroups does this only in its systemd
// manager, so it is written here; cgroupfs holds no symlinks, and the
// names come from the kernel and Berth's ids.
func delegateCgroup(d *Delegation) error {
	names := []string{"cgroup.procs", "cgroup.subtree_control", "cgroup.threads"}
	if b, err := os.ReadFile("/sys/kernel/cgroup/delegate"); err == nil {
		names = strings.Fields(string(b))
	}
	if err := unix.Fchownat(unix.AT_FDCWD, d.Dir, int(d.Owner), -1, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("delegate cgroup %s: %w", d.Dir, err)
	}
	for _, n := range names {
		err := unix.Fchownat(unix.AT_FDCWD, filepath.Join(d.Dir, n), int(d.Owner), -1, unix.AT_SYMLINK_NOFOLLOW)
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("delegate cgroup %s: %s: %w", d.Dir, n, err)
		}
	}
	return nil
}

// cgroupV2Root is where the unified hierarchy is mounted on a cgroup v2 node.
const cgroupV2Root = "/sys/fs/cgroup"
