package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"

	"github.com/berth-cri/berth/errdefs"
)

const cgroupRoot = "/sys/fs/cgroup"

// podCgroup is what Berth did to make a pod's cgroup, kept in the record so
// RemovePodSandbox removes exactly that, even after a restart.
type podCgroup struct {
	// Path is the cgroupfs path, e.g. /kubepods/besteffort/pod<uid>.
	Path string `json:"path"`
	// Created are the directories Berth made, by controller ("" for the
	// unified hierarchy); ones kubelet (or anyone) made before stay.
	Created map[string]string `json:"created,omitempty"`
}

// validateCgroupParent accepts an absolute, clean cgroupfs path: kubelet's
// /kubepods/... with the cgroupfs driver. A systemd slice name is refused,
// since only the cgroupfs driver is built.
func validateCgroupParent(p string) error {
	if !strings.HasPrefix(p, "/") || filepath.Clean(p) != p || strings.Contains(p, "\x00") {
		return errdefs.Invalidf("cgroup_parent %q: not an absolute, clean cgroupfs path (berthd uses the cgroupfs driver)", p)
	}
	return nil
}

// planCgroup prepares the pod's cgroup in every hierarchy (each v1
// controller and, where mounted, the unified one) through
// opencontainers/cgroups, so cpuset and the like are initialized from the
// parent as runc would. It returns which directories will be new, for the
// caller to record, and the function that makes them (with no process in
// them).
func planCgroup(path string) (podCgroup, func() error, error) {
	pc := podCgroup{Path: path, Created: map[string]string{}}
	m, err := manager.New(&cgroups.Cgroup{Path: path, Resources: &cgroups.Resources{}})
	if err != nil {
		return pc, nil, fmt.Errorf("pod cgroup %s: %w", path, err)
	}
	for ctrl, dir := range m.GetPaths() {
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			pc.Created[ctrl] = dir
		}
	}
	apply := func() error {
		if err := m.Apply(-1); err != nil {
			return fmt.Errorf("pod cgroup %s: %w", path, err)
		}
		return nil
	}
	return pc, apply, nil
}

// removeCgroup removes the directories Berth made for the pod. A cgroup
// still holding a process cannot go: that is an error, and the caller
// keeps the record to try again.
func removeCgroup(pc podCgroup) error {
	var errs []error
	for ctrl, dir := range pc.Created {
		// The record is ours, but never rmdir outside the cgroup
		// filesystems whatever it says.
		if !strings.HasPrefix(dir, cgroupRoot+"/") || filepath.Clean(dir) != dir {
			errs = append(errs, fmt.Errorf("pod cgroup %s: refusing to remove %q: not under %s", pc.Path, dir, cgroupRoot))
			continue
		}
		if err := cgroups.RemovePath(dir); err != nil {
			errs = append(errs, fmt.Errorf("pod cgroup %s (%s): %w", pc.Path, ctrl, err))
		}
	}
	return errors.Join(errs...)
}
