package oci

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/sys/capability"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/selinux/go-selinux/label"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// DefaultCapabilities are what an unprivileged container gets unless the
// request adds or drops some: containerd's and CRI-O's default set.
var DefaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// Default masked and read-only paths of an unprivileged container, as
// containerd has them: kernel interfaces a container must not read or
// change.
var (
	DefaultMaskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
		"/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
	}
	DefaultReadonlyPaths = []string{
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	}
)

// setSELinux labels the process and its mounts where SELinux is on. It
// runs before setMounts, which relabels volumes with the mount label.
func setSELinux(o *SpecOptions, g *Generated) error {
	sc := o.Config.GetLinux().GetSecurityContext()
	opts := sc.GetSelinuxOptions()
	if !o.Host.SELinux {
		if opts != nil {
			logrus.WithField("container", o.ID).Debug("SELinux options ignored: SELinux is off on this node")
		}
		return nil
	}
	if sc.GetPrivileged() {
		return nil
	}
	var labels []string
	for _, kv := range []struct{ k, v string }{
		{"user", opts.GetUser()}, {"role", opts.GetRole()}, {"type", opts.GetType()}, {"level", opts.GetLevel()},
	} {
		if kv.v != "" {
			labels = append(labels, kv.k+":"+kv.v)
		}
	}
	process, mount, err := label.InitLabels(labels)
	if err != nil {
		return invalidf("SELinux options %v: %v", labels, err)
	}
	g.Spec.Process.SelinuxLabel = process
	g.Spec.Linux.MountLabel = mount
	return nil
}

// setSecurity applies the security context: capabilities, privileged,
// masked and read-only paths, no_new_privs, seccomp and AppArmor.
func setSecurity(o *SpecOptions, g *Generated) error {
	sc := o.Config.GetLinux().GetSecurityContext()
	s := g.Spec
	s.Process.NoNewPrivileges = sc.GetNoNewPrivs()

	if sc.GetPrivileged() {
		caps := slices.Clone(o.Host.Capabilities)
		s.Process.Capabilities = &rspec.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
		devs, err := privilegedDevices()
		if err != nil {
			return fmt.Errorf("list host devices: %w", err)
		}
		s.Linux.Devices = append(devs, s.Linux.Devices...)
		s.Linux.Resources.Devices = []rspec.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		for i := range s.Mounts {
			if s.Mounts[i].Type == "sysfs" || s.Mounts[i].Type == "cgroup" {
				s.Mounts[i].Options = replaceOption(s.Mounts[i].Options, "ro", "rw")
			}
		}
		// No masks, no read-only kernel paths, no seccomp, no AppArmor.
		return nil
	}

	caps, err := capabilities(sc.GetCapabilities(), o.Host.Capabilities)
	if err != nil {
		return err
	}
	ambient, err := normalizeCaps(sc.GetCapabilities().GetAddAmbientCapabilities())
	if err != nil {
		return err
	}
	s.Process.Capabilities = &rspec.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	if len(ambient) > 0 {
		for _, c := range ambient {
			if !slices.Contains(caps, c) {
				return invalidf("ambient capability %s is not in the container's capabilities", c)
			}
		}
		// An ambient capability must also be inheritable.
		s.Process.Capabilities.Ambient = ambient
		s.Process.Capabilities.Inheritable = ambient
	}

	s.Linux.MaskedPaths = DefaultMaskedPaths
	if p := sc.GetMaskedPaths(); len(p) > 0 {
		s.Linux.MaskedPaths = p
	}
	s.Linux.ReadonlyPaths = DefaultReadonlyPaths
	if p := sc.GetReadonlyPaths(); len(p) > 0 {
		s.Linux.ReadonlyPaths = p
	}

	if s.Linux.Seccomp, err = seccompFor(sc, s, o.Host.SeccompDefaultWhenEmpty); err != nil {
		return err
	}
	if s.Process.ApparmorProfile, err = appArmorFor(o.ID, sc, o.Host); err != nil {
		return err
	}
	return nil
}

// capabilities computes the set from the defaults, the request's drops
// ("ALL" drops everything) and then its adds ("ALL" adds everything berthd
// holds), as containerd does.
func capabilities(c *runtimeapi.Capability, host []string) ([]string, error) {
	add, err := normalizeCaps(c.GetAddCapabilities())
	if err != nil {
		return nil, err
	}
	drop, err := normalizeCaps(c.GetDropCapabilities())
	if err != nil {
		return nil, err
	}
	var caps []string
	if !slices.Contains(drop, "ALL") {
		for _, d := range DefaultCapabilities {
			if !slices.Contains(drop, d) {
				caps = append(caps, d)
			}
		}
	}
	if slices.Contains(add, "ALL") {
		add = host
	}
	for _, a := range add {
		if !slices.Contains(host, a) {
			return nil, invalidf("capability %s: berthd does not hold it, so no container can get it", a)
		}
		if !slices.Contains(caps, a) {
			caps = append(caps, a)
		}
	}
	return caps, nil
}

// normalizeCaps upper-cases names, adds the CAP_ prefix kubelet leaves
// out, and refuses names the kernel does not know.
func normalizeCaps(in []string) ([]string, error) {
	out := make([]string, 0, len(in))
	for _, c := range in {
		c = strings.ToUpper(strings.TrimSpace(c))
		if c == "ALL" {
			out = append(out, c)
			continue
		}
		c = "CAP_" + strings.TrimPrefix(c, "CAP_")
		if !knownCap(c) {
			return nil, invalidf("capability %q is not known", c)
		}
		out = append(out, c)
	}
	return out, nil
}

func knownCap(name string) bool {
	for _, c := range capability.ListKnown() {
		if "CAP_"+strings.ToUpper(c.String()) == name {
			return true
		}
	}
	return false
}

func replaceOption(opts []string, from, to string) []string {
	out := slices.Clone(opts)
	for i, o := range out {
		if o == from {
			out[i] = to
		}
	}
	return out
}

// seccompProfilePath reads a Localhost seccomp profile; the CRI gives its
// absolute path.
func seccompProfilePath(ref string) (string, error) {
	ref = strings.TrimPrefix(ref, "localhost/")
	if !filepath.IsAbs(ref) {
		return "", invalidf("seccomp profile %q: localhost profiles are absolute paths", ref)
	}
	b, err := readProfile(ref)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// maxSeccompProfile caps a Localhost seccomp profile (moby's default
// profile is about 20 KiB).
const maxSeccompProfile = 1 << 20

// readProfile reads a profile file the request names: opened without
// blocking (a FIFO there must not hang CreateContainer), a regular file,
// at most maxSeccompProfile bytes.
func readProfile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, invalidf("seccomp profile: %v", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("seccomp profile: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, invalidf("seccomp profile %s is not a regular file (%s)", path, fi.Mode().Type())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSeccompProfile+1))
	if err != nil {
		return nil, fmt.Errorf("read seccomp profile %s: %w", path, err)
	}
	if len(b) > maxSeccompProfile {
		return nil, invalidf("seccomp profile %s is over %d bytes", path, maxSeccompProfile)
	}
	return b, nil
}
