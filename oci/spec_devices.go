package oci

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func int64p(v int64) *int64 { return &v }

// defaultDeviceRules deny every device, then allow the ones every
// container has (the runtime creates their nodes itself, as the runtime
// spec requires): null, zero, full, random, urandom, tty, console, ptmx,
// the pty slaves and tun, as containerd allows them.
func defaultDeviceRules() []rspec.LinuxDeviceCgroup {
	rule := func(typ string, major, minor int64) rspec.LinuxDeviceCgroup {
		r := rspec.LinuxDeviceCgroup{Allow: true, Type: typ, Major: int64p(major), Access: "rwm"}
		if minor >= 0 {
			r.Minor = int64p(minor)
		}
		return r
	}
	return []rspec.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		rule("c", 1, 3),    // /dev/null
		rule("c", 1, 5),    // /dev/zero
		rule("c", 1, 7),    // /dev/full
		rule("c", 1, 8),    // /dev/random
		rule("c", 1, 9),    // /dev/urandom
		rule("c", 5, 0),    // /dev/tty
		rule("c", 5, 1),    // /dev/console
		rule("c", 5, 2),    // /dev/ptmx
		rule("c", 136, -1), // /dev/pts/*
		rule("c", 10, 200), // /dev/net/tun
	}
}

// setDevices adds the request's devices: each host device node (or every
// node below a host directory) is created in the container and allowed in
// its device cgroup with the requested permissions.
func setDevices(o *SpecOptions, g *Generated) error {
	if len(o.Config.GetCDIDevices()) > 0 {
		return invalidf("CDI devices are not supported")
	}
	g.Spec.Linux.Resources.Devices = defaultDeviceRules()
	for _, d := range o.Config.GetDevices() {
		perms := d.GetPermissions()
		if perms == "" {
			perms = "rwm"
		}
		if strings.Trim(perms, "rwm") != "" {
			return invalidf("device %s: permissions %q are not a combination of r, w and m", d.GetHostPath(), perms)
		}
		dst := d.GetContainerPath()
		if !path.IsAbs(dst) {
			return invalidf("device %s: container path %q is not absolute", d.GetHostPath(), dst)
		}
		devs, err := hostDevices(d.GetHostPath(), path.Clean(dst))
		if err != nil {
			return invalidf("device %s: %v", d.GetHostPath(), err)
		}
		for _, dev := range devs {
			g.Spec.Linux.Devices = append(g.Spec.Linux.Devices, dev)
			g.Spec.Linux.Resources.Devices = append(g.Spec.Linux.Resources.Devices, rspec.LinuxDeviceCgroup{
				Allow: true, Type: dev.Type, Major: int64p(dev.Major), Minor: int64p(dev.Minor), Access: perms,
			})
		}
	}
	return nil
}

// hostDevices returns the device at hostPath as it should appear at dst,
// or, for a directory, every device below it mapped below dst.
func hostDevices(hostPath, dst string) ([]rspec.LinuxDevice, error) {
	resolved, err := filepath.EvalSymlinks(hostPath)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(resolved)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		d, err := deviceFromPath(resolved, dst)
		if err != nil {
			return nil, err
		}
		return []rspec.LinuxDevice{*d}, nil
	}
	var out []rspec.LinuxDevice
	err = filepath.WalkDir(resolved, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || e.Type()&(fs.ModeDevice|fs.ModeCharDevice) == 0 {
			return nil
		}
		rel, _ := filepath.Rel(resolved, p)
		d, err := deviceFromPath(p, path.Join(dst, filepath.ToSlash(rel)))
		if err != nil {
			return err
		}
		out = append(out, *d)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("directory %s holds no device nodes", resolved)
	}
	return out, nil
}

// deviceFromPath describes the device node at p, to be created at dst.
func deviceFromPath(p, dst string) (*rspec.LinuxDevice, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return nil, err
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return nil, fmt.Errorf("%s is not a device node", p)
	}
	mode := os.FileMode(st.Mode & 0o777)
	uid, gid := st.Uid, st.Gid
	return &rspec.LinuxDevice{
		Path:     dst,
		Type:     typ,
		Major:    int64(unix.Major(st.Rdev)),
		Minor:    int64(unix.Minor(st.Rdev)),
		FileMode: &mode,
		UID:      &uid,
		GID:      &gid,
	}, nil
}

// privilegedDevices are all of the host's device nodes under /dev, for a
// privileged container (whose device cgroup allows everything), minus the
// pty and shm trees the container mounts afresh.
func privilegedDevices() ([]rspec.LinuxDevice, error) {
	var out []rspec.LinuxDevice
	err := filepath.WalkDir("/dev", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return nil // vanished while walking: skip it
		}
		if e.IsDir() {
			switch p {
			case "/dev/pts", "/dev/shm", "/dev/mqueue", "/dev/.lxc", "/dev/.udev":
				return filepath.SkipDir
			}
			return nil
		}
		if e.Type()&(fs.ModeDevice|fs.ModeCharDevice) == 0 || p == "/dev/console" || p == "/dev/ptmx" {
			return nil
		}
		d, err := deviceFromPath(p, p)
		if err != nil {
			return nil
		}
		out = append(out, *d)
		return nil
	})
	return out, err
}
