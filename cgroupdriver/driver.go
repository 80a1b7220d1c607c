// Package cgroupdriver is Berth's one seam for the cgroup driver: how a
// pod's and a container's cgroups are named, where they are in the cgroup
// filesystem, and how a pod's cgroup is made, changed and removed.
//
// With the cgroupfs driver a cgroup is a path (/kubepods/besteffort/pod<uid>)
// and Berth makes its directories. With the systemd driver a pod's cgroup is
// a slice (kubepods-besteffort-pod<uid>.slice) and a container's a scope
// (berth-<id>.scope inside it), both units made through systemd's D-Bus API
// (opencontainers/cgroups/systemd), so systemd, which owns the tree on such
// a node, knows about them. The runtime gets the same choice: a cgroupsPath
// of the form "slice:berth:<id>" and --systemd-cgroup.
//
// A stored pod names its cgroup in one form or the other, and the form
// alone says which driver made it (Of): a pod made before a restart under
// another driver is still read, updated and removed as it was made.
package cgroupdriver

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/systemd"
)

// Driver names a cgroup driver, as kubelet and the config spell it.
type Driver string

const (
	Cgroupfs Driver = "cgroupfs"
	Systemd  Driver = "systemd"
)

// scopePrefix names container scopes berth-<id>.scope, as CRI-O's are
// crio-<id>.scope: a person reading systemctl's list sees whose they are.
const scopePrefix = "berth"

// Of is the driver whose form cgroup (a pod's cgroup or a cgroup_parent)
// has: a slice name is systemd's, anything else a cgroupfs path.
func Of(cgroup string) Driver {
	if strings.HasSuffix(cgroup, ".slice") && !strings.Contains(cgroup, "/") {
		return Systemd
	}
	return Cgroupfs
}

// Parse checks a configured driver name; "" is returned as is (follow the
// node, see Resolve).
func Parse(s string) (Driver, error) {
	switch d := Driver(s); d {
	case "", Cgroupfs, Systemd:
		return d, nil
	}
	return "", fmt.Errorf("cgroup driver %q is not cgroupfs or systemd", s)
}

// DefaultParent is the parent of pods whose request names no
// cgroup_parent, when the config names none either.
func (d Driver) DefaultParent() string {
	if d == Systemd {
		return "berth.slice"
	}
	return "/berth"
}

// ValidateParent accepts a cgroup_parent (kubelet's, or the config's) in
// this driver's form: an absolute, clean path for cgroupfs; a slice name
// for systemd (kubelet's systemd driver sends kubepods-besteffort-pod<uid>.slice).
func (d Driver) ValidateParent(p string) error {
	if d == Systemd {
		if err := validSlice(p); err != nil {
			return fmt.Errorf("cgroup_parent %q: not a systemd slice name (the cgroup driver is systemd): %w", p, err)
		}
		return nil
	}
	if !strings.HasPrefix(p, "/") || filepath.Clean(p) != p || strings.Contains(p, "\x00") {
		return fmt.Errorf("cgroup_parent %q: not an absolute, clean cgroupfs path (the cgroup driver is cgroupfs)", p)
	}
	return nil
}

// Canonical is cgroup_parent p in this driver's own form. For systemd, a
// slice may also be named by its path in the cgroup filesystem (critest
// sends /test.slice; CRI-O and containerd take the path's last element):
// such a path is taken as the slice's name when it is exactly where
// systemd puts a slice of that name, so /test.slice is test.slice and
// /kubepods.slice/kubepods-besteffort.slice is kubepods-besteffort.slice.
// Anything else is returned as is, for ValidateParent to refuse.
func (d Driver) Canonical(p string) string {
	if d != Systemd || !strings.HasPrefix(p, "/") {
		return p
	}
	name := path.Base(p)
	if where, err := systemd.ExpandSlice(name); err == nil && where == p {
		return name
	}
	return p
}

// validSlice checks a slice name the way systemd would accept it: unit
// name characters only, no empty component between dashes.
func validSlice(s string) error {
	if len(s) > 255 {
		return errors.New("longer than 255 characters")
	}
	if !strings.HasSuffix(s, ".slice") {
		return errors.New("does not end in .slice")
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(":_.-\\", c)) {
			return fmt.Errorf("character %q is not allowed in a unit name", c)
		}
	}
	_, err := systemd.ExpandSlice(s)
	return err
}

// PodCgroup is the cgroup of pod id below parent, for a pod whose request
// names no cgroup_parent: <parent>/pod-<id>, or the slice
// <parent>-pod<id>.slice inside the slice parent (the form of kubelet's
// kubepods-besteffort-pod<uid>.slice; "-" is systemd's hierarchy
// separator, and ids have none).
func PodCgroup(parent, id string) string {
	if Of(parent) == Systemd {
		return childSlice(parent, "pod"+id)
	}
	return path.Join(parent, "pod-"+id)
}

// childSlice names the slice leaf inside slice parent.
func childSlice(parent, leaf string) string {
	base := strings.TrimSuffix(parent, ".slice")
	if base == "-" {
		return leaf + ".slice"
	}
	return base + "-" + leaf + ".slice"
}

// parentSlice is the slice that slice is inside, by its name.
func parentSlice(slice string) string {
	base := strings.TrimSuffix(slice, ".slice")
	i := strings.LastIndexByte(base, '-')
	if i <= 0 {
		return "-.slice"
	}
	return base[:i] + ".slice"
}

// ContainerCgroupsPath is what the OCI spec's linux.cgroupsPath says for
// container id of the pod whose cgroup is pod: a path below it, or runc's
// systemd form "slice:prefix:name" (the runtime makes the scope
// prefix-name.scope inside slice).
func ContainerCgroupsPath(pod, id string) string {
	if Of(pod) == Systemd {
		return pod + ":" + scopePrefix + ":" + id
	}
	if pod == "" {
		pod = "/"
	}
	return filepath.Join(pod, scopePrefix+"-"+id)
}

// Path is where cgroup (a pod's cgroup, either form) is in the cgroup
// filesystem, relative to its root: the slice kubepods-besteffort.slice is
// /kubepods.slice/kubepods-besteffort.slice.
func Path(cgroup string) (string, error) {
	if Of(cgroup) == Systemd {
		p, err := systemd.ExpandSlice(cgroup)
		if err != nil {
			return "", fmt.Errorf("cgroup %q: %w", cgroup, err)
		}
		return p, nil
	}
	return cgroup, nil
}

// ContainerPath is where container id's cgroup is in the cgroup filesystem
// (relative to its root), for the pod whose cgroup is pod.
func ContainerPath(pod, id string) (string, error) {
	if Of(pod) != Systemd {
		return ContainerCgroupsPath(pod, id), nil
	}
	p, err := Path(pod)
	if err != nil {
		return "", err
	}
	return path.Join(p, scopePrefix+"-"+id+".scope"), nil
}

// Config is the opencontainers/cgroups description of a pod's cgroup
// (either form) with resources res, for its manager (manager.New picks
// fs/fs2 or systemd by it). A slice is described as kubelet describes
// its pod slices: its name, and the slice it is inside as its parent.
func Config(cgroup string, res *cgroups.Resources) (*cgroups.Cgroup, error) {
	if res == nil {
		res = &cgroups.Resources{}
	}
	if Of(cgroup) != Systemd {
		return &cgroups.Cgroup{Path: cgroup, Resources: res}, nil
	}
	if err := validSlice(cgroup); err != nil {
		return nil, fmt.Errorf("cgroup %q: %w", cgroup, err)
	}
	return &cgroups.Cgroup{Name: cgroup, Parent: parentSlice(cgroup), Systemd: true, Resources: res}, nil
}
