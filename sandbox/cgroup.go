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

	"github.com/berth-cri/berth/cgroupdriver"
)

const cgroupRoot = "/sys/fs/cgroup"

// podCgroup is what Berth did to make a pod's cgroup, kept in the record so
// RemovePodSandbox removes exactly that, even after a restart.
type podCgroup struct {
	// Path is the pod's cgroup: a cgroupfs path (/kubepods/besteffort/pod<uid>)
	// or, with the systemd driver, a slice name
	// (kubepods-besteffort-pod<uid>.slice); cgroupdriver.Of tells which.
	Path string `json:"path"`
	// Created are the directories Berth made, by controller ("" for the
	// unified hierarchy); ones kubelet (or anyone) made before stay.
	Created map[string]string `json:"created,omitempty"`
	// Unit is the slice Berth started through systemd (the systemd driver,
	// when the slice did not exist): removing the pod stops it.
	Unit string `json:"unit,omitempty"`
}

// newCgroupManager is the opencontainers/cgroups manager of a pod's cgroup
// in whichever form it is (fs/fs2 for a path, systemd for a slice).
func newCgroupManager(path string, res *cgroups.Resources) (cgroups.Manager, error) {
	cfg, err := cgroupdriver.Config(path, res)
	if err != nil {
		return nil, err
	}
	return manager.New(cfg)
}

// planCgroup prepares the pod's cgroup through opencontainers/cgroups, so
// cpuset and the like are initialized from the parent as runc would: with
// cgroupfs in every hierarchy (each v1 controller and, where mounted, the
// unified one), with systemd as a transient slice (as kubelet makes its
// pod slices). It returns what will be new, for the caller to record, and
// the function that makes it (with no process in it).
func planCgroup(path string) (podCgroup, func() error, error) {
	pc := podCgroup{Path: path, Created: map[string]string{}}
	m, err := newCgroupManager(path, nil)
	if err != nil {
		return pc, nil, fmt.Errorf("pod cgroup %s: %w", path, err)
	}
	for ctrl, dir := range m.GetPaths() {
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			pc.Created[ctrl] = dir
		}
	}
	if cgroupdriver.Of(path) == cgroupdriver.Systemd && len(pc.Created) > 0 {
		// A slice kubelet (or anyone) started is theirs; one that is not
		// there yet Berth starts, and stops on removal.
		pc.Unit = path
	}
	apply := func() error {
		if err := m.Apply(-1); err != nil {
			return fmt.Errorf("pod cgroup %s: %w", path, err)
		}
		return nil
	}
	return pc, apply, nil
}

// removeCgroup removes what Berth made for the pod. A cgroup still holding
// a process cannot go: that is an error, and the caller keeps the record
// to try again.
func removeCgroup(pc podCgroup) error {
	var errs []error
	for ctrl, dir := range pc.Created {
		// The record is ours, but never touch anything outside the cgroup
		// filesystems whatever it says.
		if !strings.HasPrefix(dir, cgroupRoot+"/") || filepath.Clean(dir) != dir {
			errs = append(errs, fmt.Errorf("pod cgroup %s: refusing to remove %q: not under %s", pc.Path, dir, cgroupRoot))
			continue
		}
		if pc.Unit != "" {
			continue // stopping the slice removes them
		}
		if err := cgroups.RemovePath(dir); err != nil {
			errs = append(errs, fmt.Errorf("pod cgroup %s (%s): %w", pc.Path, ctrl, err))
		}
	}
	if pc.Unit != "" && len(errs) == 0 {
		errs = append(errs, stopSlice(pc))
	}
	return errors.Join(errs...)
}

// stopSlice stops the pod's slice, once nothing runs in it: stopping a
// slice would kill what does, and a pod's processes are its containers',
// which their own removal ends (the same rule as rmdir's EBUSY).
func stopSlice(pc podCgroup) error {
	for _, dir := range pc.Created {
		pids, err := cgroups.GetAllPids(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("pod cgroup %s: %w", pc.Path, err)
		}
		if len(pids) > 0 {
			return fmt.Errorf("pod cgroup %s: %d processes still run in it", pc.Path, len(pids))
		}
	}
	m, err := newCgroupManager(pc.Unit, nil)
	if err != nil {
		return fmt.Errorf("pod cgroup %s: %w", pc.Path, err)
	}
	if err := m.Destroy(); err != nil {
		return fmt.Errorf("pod cgroup %s: stop slice: %w", pc.Path, err)
	}
	return nil
}
