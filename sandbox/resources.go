package sandbox

import (
	"fmt"

	"github.com/opencontainers/cgroups"

	"github.com/berth-cri/berth/errdefs"
)

// Resources are limits for a pod's cgroup, in cgroup v1 units; zero
// leaves a limit as it is.
type Resources struct {
	CPUShares   uint64
	CPUQuota    int64
	CPUPeriod   uint64
	MemoryLimit int64
	CpusetCPUs  string
	CpusetMems  string
}

// add sums what the pod's containers need and the pod's overhead, as
// kubelet sizes a pod's cgroup. A quota counts only where both name the
// same period (kubelet's always do); cpusets are the containers'.
func (r Resources) add(o Resources) Resources {
	out := r
	out.CPUShares += o.CPUShares
	if r.MemoryLimit > 0 {
		out.MemoryLimit += max(o.MemoryLimit, 0)
	}
	if r.CPUQuota > 0 && o.CPUQuota > 0 && (o.CPUPeriod == 0 || o.CPUPeriod == r.CPUPeriod) {
		out.CPUQuota += o.CPUQuota
	}
	return out
}

// UpdateResources sets the pod cgroup's limits to resources plus
// overhead (kubelet's in-place pod resize), on cgroup v1 or v2 through
// opencontainers/cgroups: cgroupfs writes the files; systemd sets the
// slice's properties (so systemd keeps them) and then the files. Device
// rules are left alone.
func (m *Manager) UpdateResources(id string, resources, overhead Resources) error {
	m.mu.Lock()
	p, err := m.lookupLocked(id)
	if err != nil {
		m.mu.Unlock()
		return err
	}
	id = p.sb.ID
	m.mu.Unlock()
	p.op.Lock()
	defer p.op.Unlock()
	if p.removed {
		return errdefs.NotFoundf("pod sandbox %s not found", id)
	}
	if p.cgroup == nil {
		return errdefs.FailedPreconditionf("pod sandbox %s has no cgroup yet", id)
	}
	want := resources.add(overhead)
	res := &cgroups.Resources{
		SkipDevices: true,
		CpuShares:   want.CPUShares,
		CpuQuota:    want.CPUQuota,
		CpuPeriod:   want.CPUPeriod,
		Memory:      want.MemoryLimit,
		CpusetCpus:  want.CpusetCPUs,
		CpusetMems:  want.CpusetMems,
	}
	if cgroups.IsCgroup2UnifiedMode() && res.CpuShares != 0 {
		res.CpuWeight = cgroups.ConvertCPUSharesToCgroupV2Value(res.CpuShares)
	}
	mgr, err := newCgroupManager(p.cgroup.Path, res)
	if err != nil {
		return fmt.Errorf("pod %s cgroup %s: %w", truncID(id), p.cgroup.Path, err)
	}
	if !mgr.Exists() {
		return errdefs.FailedPreconditionf("pod sandbox %s: its cgroup %s is gone", id, p.cgroup.Path)
	}
	if err := mgr.Set(res); err != nil {
		// The usual cause: a memory limit below what the pod uses.
		return errdefs.FailedPrecondition(fmt.Errorf("pod %s: set cgroup %s: %w", truncID(id), p.cgroup.Path, err))
	}
	return nil
}
