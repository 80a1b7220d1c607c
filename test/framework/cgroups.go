package framework

import (
	"path/filepath"
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
