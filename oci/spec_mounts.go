package oci

import (
	"fmt"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moby/sys/mountinfo"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/selinux/go-selinux/label"
	"github.com/sirupsen/logrus"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// defaultMounts are every container's kernel filesystems, as containerd's
// and CRI-O's default specs have them. /sys and its cgroups are read-only
// unless the container is privileged (setSecurity makes them writable).
func defaultMounts() []rspec.Mount {
	return []rspec.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
	}
}

// setMounts puts together the kernel filesystems, the pod's /dev/shm,
// /etc/hosts, /etc/resolv.conf and /etc/hostname, and the request's
// mounts. A request mount replaces a default one at the same place
// (kubelet mounts its own /etc/hosts), and parents are mounted before
// what is mounted inside them.
func setMounts(o *SpecOptions, g *Generated) error {
	var mounts []rspec.Mount
	requested := map[string]bool{}
	for _, m := range o.Config.GetMounts() {
		sm, applied, err := criMount(o, g, m)
		if err != nil {
			return err
		}
		if requested[sm.Destination] {
			return invalidf("mount %s: two mounts at the same container path", sm.Destination)
		}
		requested[sm.Destination] = true
		mounts = append(mounts, sm)
		g.Mounts = append(g.Mounts, applied)
	}

	readonlyRoot := o.Config.GetLinux().GetSecurityContext().GetReadonlyRootfs()
	base := defaultMounts()
	if o.Pod.ShmPath != "" {
		base = append(base, bindMount(o.Pod.ShmPath, "/dev/shm", false, "nosuid", "noexec", "nodev"))
	} else {
		base = append(base, rspec.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm",
			Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}})
	}
	for _, f := range []struct{ src, dst string }{
		{o.Pod.HostsPath, "/etc/hosts"},
		{o.Pod.ResolvConfPath, "/etc/resolv.conf"},
		{o.Pod.HostnamePath, "/etc/hostname"},
	} {
		if f.src != "" {
			base = append(base, bindMount(f.src, f.dst, readonlyRoot))
		}
	}
	var all []rspec.Mount
	for _, m := range base {
		if !requested[m.Destination] {
			all = append(all, m)
		}
	}
	all = append(all, mounts...)
	// Stable, by depth: "/a" before "/a/b", and equal depths keep the
	// order above (kernel filesystems first).
	sort.SliceStable(all, func(i, j int) bool { return depth(all[i].Destination) < depth(all[j].Destination) })
	g.Spec.Mounts = all
	return nil
}

// criMount turns one CRI mount into a bind mount, checking the host path
// and the propagation the mount asks for.
func criMount(o *SpecOptions, g *Generated, m *runtimeapi.Mount) (rspec.Mount, Mount, error) {
	dst := m.GetContainerPath()
	if !path.IsAbs(dst) {
		return rspec.Mount{}, Mount{}, invalidf("mount container path %q is not absolute", dst)
	}
	dst = path.Clean(dst)
	if m.GetImage() != nil {
		return imageVolumeMount(o, dst, m)
	}
	uidMappings, gidMappings, err := mountIDMappings(o.Pod.UserNS, m)
	if err != nil {
		return rspec.Mount{}, Mount{}, invalidf("mount %s: %v", dst, err)
	}
	if err := checkRecursiveReadOnly(m); err != nil {
		return rspec.Mount{}, Mount{}, invalidf("mount %s: %v", dst, err)
	}
	src := m.GetHostPath()
	if !filepath.IsAbs(src) {
		return rspec.Mount{}, Mount{}, invalidf("mount %s: host path %q is not absolute", dst, src)
	}
	// Mount what the path names now, not a symlink that could be
	// swapped later.
	resolved, err := filepath.EvalSymlinks(src)
	if err != nil {
		return rspec.Mount{}, Mount{}, invalidf("mount %s: host path %s: %v", dst, src, err)
	}
	opts := []string{}
	switch m.GetPropagation() {
	case runtimeapi.MountPropagation_PROPAGATION_PRIVATE:
		opts = append(opts, "rprivate")
	case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
		if err := requirePropagation(resolved, false); err != nil {
			return rspec.Mount{}, Mount{}, invalidf("mount %s: host-to-container propagation: %v", dst, err)
		}
		opts = append(opts, "rslave")
		if g.Spec.Linux.RootfsPropagation != "rshared" {
			g.Spec.Linux.RootfsPropagation = "rslave"
		}
	case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
		if err := requirePropagation(resolved, true); err != nil {
			return rspec.Mount{}, Mount{}, invalidf("mount %s: bidirectional propagation: %v", dst, err)
		}
		opts = append(opts, "rshared")
		g.Spec.Linux.RootfsPropagation = "rshared"
	default:
		return rspec.Mount{}, Mount{}, invalidf("mount %s: propagation %v is not known", dst, m.GetPropagation())
	}
	if m.GetRecursiveReadOnly() {
		opts = append(opts, "rro")
	}
	if m.GetSelinuxRelabel() {
		if !o.Host.SELinux {
			logrus.WithField("container", o.ID).Warnf("mount %s: SELinux relabel asked for %s, but SELinux is off on this node: ignored", dst, resolved)
		} else if err := label.Relabel(resolved, g.Spec.Linux.MountLabel, true); err != nil {
			return rspec.Mount{}, Mount{}, fmt.Errorf("mount %s: relabel %s: %w", dst, resolved, err)
		}
	}
	sm := bindMount(resolved, dst, m.GetReadonly(), opts...)
	sm.UIDMappings, sm.GIDMappings = uidMappings, gidMappings
	applied := Mount{
		ContainerPath:  dst,
		HostPath:       resolved,
		Readonly:       m.GetReadonly(),
		SelinuxRelabel: m.GetSelinuxRelabel(),
		Propagation:    int32(m.GetPropagation()),
	}
	return sm, applied, nil
}

func bindMount(src, dst string, readonly bool, extra ...string) rspec.Mount {
	opts := []string{"rbind"}
	if readonly {
		opts = append(opts, "ro")
	} else {
		opts = append(opts, "rw")
	}
	return rspec.Mount{Destination: dst, Type: "bind", Source: src, Options: append(opts, extra...)}
}

// requirePropagation checks that the mount holding p propagates to the
// container: shared for bidirectional, shared or slave for host to
// container. Without it the runtime would mount it quietly private.
func requirePropagation(p string, needShared bool) error {
	mounts, err := mountinfo.GetMounts(mountinfo.ParentsFilter(p))
	if err != nil {
		return fmt.Errorf("read mount table: %w", err)
	}
	var best *mountinfo.Info
	for _, m := range mounts {
		if best == nil || len(m.Mountpoint) >= len(best.Mountpoint) {
			best = m
		}
	}
	if best == nil {
		return fmt.Errorf("no mount holds %s", p)
	}
	shared := strings.Contains(best.Optional, "shared:")
	slave := strings.Contains(best.Optional, "master:")
	switch {
	case shared:
		return nil
	case slave && !needShared:
		return nil
	case needShared:
		return fmt.Errorf("%s is on mount %s, which is not shared (mount --make-rshared %s)", p, best.Mountpoint, best.Mountpoint)
	default:
		return fmt.Errorf("%s is on mount %s, which is neither shared nor slave", p, best.Mountpoint)
	}
}

func depth(p string) int {
	p = path.Clean(p)
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}
