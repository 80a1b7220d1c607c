package oci

import (
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// setResources sets the cgroup limits and the OOM score adjustment.
func setResources(o *SpecOptions, g *Generated) error {
	r := o.Config.GetLinux().GetResources()
	lr, err := Resources(r, o.Host)
	if err != nil {
		return err
	}
	lr.Devices = g.Spec.Linux.Resources.Devices
	g.Spec.Linux.Resources = lr
	adj := OOMScoreAdj(r.GetOomScoreAdj(), o.Host)
	logClamp(o.ID, r.GetOomScoreAdj(), adj)
	g.Spec.Process.OOMScoreAdj = &adj
	return nil
}

// OOMScoreAdj clamps a requested oom_score_adj to what berthd may set:
// without CAP_SYS_RESOURCE nobody can go below berthd's own value, so
// asking for less would fail the container (containerd's
// restrict_oom_score_adj).
func OOMScoreAdj(requested int64, h *Host) int {
	v := int(max(min(requested, 1000), -1000))
	if h.MinOOMScoreAdj != nil && v < *h.MinOOMScoreAdj {
		return *h.MinOOMScoreAdj
	}
	return v
}

// Resources converts CRI resources to the runtime spec's cgroup limits
// (device rules excluded). Zero values mean "not set", as in the CRI.
// It is what CreateContainer puts in the spec and what
// UpdateContainerResources hands to the runtime's update.
func Resources(r *runtimeapi.LinuxContainerResources, h *Host) (*rspec.LinuxResources, error) {
	out := &rspec.LinuxResources{}
	if r == nil {
		return out, nil
	}
	if r.GetCpuShares() < 0 || r.GetCpuQuota() < -1 || r.GetCpuPeriod() < 0 || r.GetMemoryLimitInBytes() < 0 {
		return nil, invalidf("resources: negative cpu shares, quota, period or memory limit")
	}
	cpu := &rspec.LinuxCPU{Cpus: r.GetCpusetCpus(), Mems: r.GetCpusetMems()}
	if v := r.GetCpuShares(); v > 0 {
		s := uint64(v)
		cpu.Shares = &s
	}
	if v := r.GetCpuQuota(); v != 0 {
		cpu.Quota = &v
	}
	if v := r.GetCpuPeriod(); v > 0 {
		p := uint64(v)
		cpu.Period = &p
	}
	if *cpu != (rspec.LinuxCPU{}) {
		out.CPU = cpu
	}
	if v := r.GetMemoryLimitInBytes(); v > 0 {
		out.Memory = &rspec.LinuxMemory{Limit: &v}
		if sw := r.GetMemorySwapLimitInBytes(); sw > 0 {
			if sw < v {
				return nil, invalidf("resources: memory+swap limit %d is below the memory limit %d", sw, v)
			}
			if h.MemorySwap {
				out.Memory.Swap = &sw
			}
		}
	}
	for _, hp := range r.GetHugepageLimits() {
		if !h.Hugetlb {
			// kubelet sends a zero limit for every page size the node
			// has; without the controller there is nothing to limit.
			if hp.GetLimit() != 0 {
				return nil, invalidf("resources: hugepage limit for %s: the hugetlb cgroup controller is not available on this node", hp.GetPageSize())
			}
			continue
		}
		out.HugepageLimits = append(out.HugepageLimits, rspec.LinuxHugepageLimit{Pagesize: hp.GetPageSize(), Limit: hp.GetLimit()})
	}
	if len(r.GetUnified()) > 0 {
		if !h.CgroupV2 {
			return nil, invalidf("resources: unified cgroup settings need cgroup v2; this node runs cgroup v1")
		}
		out.Unified = make(map[string]string, len(r.GetUnified()))
		for k, v := range r.GetUnified() {
			out.Unified[k] = v
		}
	}
	return out, nil
}

// logClamp notes a clamped oom_score_adj once per container.
func logClamp(id string, requested int64, got int) {
	if int64(got) != requested {
		logrus.WithField("container", id).Debugf("oom_score_adj %d clamped to %d (berthd's own)", requested, got)
	}
}
