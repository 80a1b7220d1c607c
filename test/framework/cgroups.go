package framework

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// cgroupRoot is where cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// CgroupsLeft lists the cgroups matching pattern (e.g. "pod-*") below
// parent in every hierarchy of the node: the v1 controllers and a hybrid
// node's unified tree (<root>/<hierarchy>/<parent>), and a pure v2
// node's single tree (<root>/<parent>). A leak check that looks at only
// one layout passes on the other whatever leaks.
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
		out = append(out, m...)
	}
	return out
}

// SlicesLeft lists the systemd units (pod slices, container scopes) still
// loaded inside the test's slice parent: a pod's slice is named
// <parent minus .slice>-pod<id>.slice, and its scopes live in it.
func SlicesLeft(parent string) []string {
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

// stopSlice stops the test's slice parent, and with it anything left in
// it, then removes its cgroup directories.
func stopSlice(parent string) {
	exec.Command("systemctl", "stop", parent).Run()
	if p, err := systemdExpand(parent); err == nil {
		removeCgroup(p)
	}
}

// systemdExpand is the cgroup path of a slice name (a-b.slice is
// /a.slice/a-b.slice).
func systemdExpand(slice string) (string, error) {
	name := strings.TrimSuffix(slice, ".slice")
	if name == slice || name == "" || strings.Contains(name, "/") {
		return "", fmt.Errorf("not a slice: %q", slice)
	}
	var p, prefix string
	for _, c := range strings.Split(name, "-") {
		if c == "" {
			return "", fmt.Errorf("not a slice: %q", slice)
		}
		p += "/" + prefix + c + ".slice"
		prefix += c + "-"
	}
	return p, nil
}
