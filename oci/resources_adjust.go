package oci

import (
	"maps"
	"slices"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Plugins (NRI) hand Berth cgroup limits in the runtime spec's terms,
// while a container's record keeps them in the CRI's. The functions here
// check such limits against the node and convert and merge them.

// CheckResources makes limits from a plugin fit the node the way
// Resources does for a CRI request: swap is dropped where it is not
// accounted, hugepage and unified limits the node cannot apply are
// refused.
func CheckResources(lr *rspec.LinuxResources, h *Host) error {
	if lr == nil || h == nil {
		return nil
	}
	if lr.Memory != nil && !h.MemorySwap {
		lr.Memory.Swap = nil
	}
	if !h.Hugetlb {
		kept := lr.HugepageLimits[:0]
		for _, hp := range lr.HugepageLimits {
			if hp.Limit != 0 {
				return invalidf("resources: hugepage limit for %s: the hugetlb cgroup controller is not available on this node", hp.Pagesize)
			}
		}
		lr.HugepageLimits = kept
	}
	if len(lr.Unified) > 0 && !h.CgroupV2 {
		return invalidf("resources: unified cgroup settings need cgroup v2; this node runs cgroup v1")
	}
	return nil
}

// adjustedResources is what the record keeps of a spec's limits once
// plugins adjusted them, and clamps the spec's oom_score_adj as a CRI
// request's is: a plugin can no more lower it than kubelet can.
func adjustedResources(id string, s *rspec.Spec, h *Host, requested *runtimeapi.LinuxContainerResources) *runtimeapi.LinuxContainerResources {
	oom := requested.GetOomScoreAdj()
	if s.Process != nil && s.Process.OOMScoreAdj != nil && h != nil {
		v := OOMScoreAdj(int64(*s.Process.OOMScoreAdj), h)
		logClamp(id, int64(*s.Process.OOMScoreAdj), v)
		s.Process.OOMScoreAdj = &v
		oom = int64(v)
	}
	if s.Linux == nil || s.Linux.Resources == nil {
		return requested
	}
	return criResources(s.Linux.Resources, oom)
}

// criResources converts limits to the CRI's form.
func criResources(lr *rspec.LinuxResources, oomScoreAdj int64) *runtimeapi.LinuxContainerResources {
	out := &runtimeapi.LinuxContainerResources{OomScoreAdj: oomScoreAdj}
	if lr == nil {
		return out
	}
	if c := lr.CPU; c != nil {
		if c.Shares != nil {
			out.CpuShares = int64(*c.Shares)
		}
		if c.Quota != nil {
			out.CpuQuota = *c.Quota
		}
		if c.Period != nil {
			out.CpuPeriod = int64(*c.Period)
		}
		out.CpusetCpus, out.CpusetMems = c.Cpus, c.Mems
	}
	if mem := lr.Memory; mem != nil {
		if mem.Limit != nil {
			out.MemoryLimitInBytes = *mem.Limit
		}
		if mem.Swap != nil {
			out.MemorySwapLimitInBytes = *mem.Swap
		}
	}
	for _, hp := range lr.HugepageLimits {
		out.HugepageLimits = append(out.HugepageLimits, &runtimeapi.HugepageLimit{PageSize: hp.Pagesize, Limit: hp.Limit})
	}
	if len(lr.Unified) > 0 {
		out.Unified = maps.Clone(lr.Unified)
	}
	return out
}

// MergeResources returns base with every limit upd sets replaced.
func MergeResources(base, upd *rspec.LinuxResources) *rspec.LinuxResources {
	out := *base
	out.HugepageLimits = slices.Clone(base.HugepageLimits)
	if upd == nil {
		return &out
	}
	if u := upd.Memory; u != nil {
		m := rspec.LinuxMemory{}
		if out.Memory != nil {
			m = *out.Memory
		}
		setIf(&m.Limit, u.Limit)
		setIf(&m.Reservation, u.Reservation)
		setIf(&m.Swap, u.Swap)
		setIf(&m.Kernel, u.Kernel)
		setIf(&m.KernelTCP, u.KernelTCP)
		setIf(&m.Swappiness, u.Swappiness)
		setIf(&m.DisableOOMKiller, u.DisableOOMKiller)
		setIf(&m.UseHierarchy, u.UseHierarchy)
		out.Memory = &m
	}
	if u := upd.CPU; u != nil {
		c := rspec.LinuxCPU{}
		if out.CPU != nil {
			c = *out.CPU
		}
		setIf(&c.Shares, u.Shares)
		setIf(&c.Quota, u.Quota)
		setIf(&c.Period, u.Period)
		setIf(&c.RealtimeRuntime, u.RealtimeRuntime)
		setIf(&c.RealtimePeriod, u.RealtimePeriod)
		if u.Cpus != "" {
			c.Cpus = u.Cpus
		}
		if u.Mems != "" {
			c.Mems = u.Mems
		}
		out.CPU = &c
	}
	if upd.Pids != nil {
		out.Pids = upd.Pids
	}
	if upd.BlockIO != nil {
		out.BlockIO = upd.BlockIO
	}
	for _, u := range upd.HugepageLimits {
		replaced := false
		for i, hp := range out.HugepageLimits {
			if hp.Pagesize == u.Pagesize {
				out.HugepageLimits[i], replaced = u, true
			}
		}
		if !replaced {
			out.HugepageLimits = append(out.HugepageLimits, u)
		}
	}
	if len(upd.Unified) > 0 {
		out.Unified = maps.Clone(out.Unified)
		if out.Unified == nil {
			out.Unified = map[string]string{}
		}
		maps.Copy(out.Unified, upd.Unified)
	}
	return &out
}

func setIf[T any](dst **T, v *T) {
	if v != nil {
		*dst = v
	}
}
