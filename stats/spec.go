package stats

import (
	"math"
	"strconv"
	"strings"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fscommon"
)

// spec reads the limits set on the cgroup, from its own files: the
// library's statistics do not carry them. A file missing (a controller
// not mounted, a kernel without swap accounting) leaves its field 0.
func (r *cgroupReader) spec() *Spec {
	if r.v2 {
		return r.specV2()
	}
	sp := &Spec{}
	if cpu := r.dir("cpu"); cpu != "" {
		sp.CPUPeriod = readUint(cpu, "cpu.cfs_period_us")
		sp.CPUShares = readUint(cpu, "cpu.shares")
		// -1 is no quota.
		if s, err := cgroups.ReadFile(cpu, "cpu.cfs_quota_us"); err == nil {
			if q, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil && q > 0 {
				sp.CPUQuota = uint64(q)
			}
		}
	}
	if mem := r.dir("memory"); mem != "" {
		sp.MemorySwapLimit = limit(readUint(mem, "memory.memsw.limit_in_bytes"))
		sp.MemoryReservation = limit(readUint(mem, "memory.soft_limit_in_bytes"))
	}
	return sp
}

// specV2 reads cpu.max, cpu.weight, memory.swap.max and memory.low. The
// swap limit is reported as v1's memory+swap, which is what the CRI's
// MemorySwapLimitInBytes sets.
func (r *cgroupReader) specV2() *Spec {
	dir := r.dir("")
	sp := &Spec{}
	if s, err := cgroups.ReadFile(dir, "cpu.max"); err == nil {
		quota, period, _ := strings.Cut(strings.TrimSpace(s), " ")
		sp.CPUPeriod, _ = strconv.ParseUint(period, 10, 64)
		if quota != "max" {
			sp.CPUQuota, _ = strconv.ParseUint(quota, 10, 64)
		}
	}
	if w := readUint(dir, "cpu.weight"); w > 0 {
		sp.CPUShares = weightToShares(w)
	}
	swap, mem := readUint(dir, "memory.swap.max"), readUint(dir, "memory.max")
	if r.swap && swap < unlimited && limit(mem) > 0 {
		sp.MemorySwapLimit = swap + mem
	}
	sp.MemoryReservation = limit(readUint(dir, "memory.low"))
	return sp
}

// weightToShares inverts opencontainers/cgroups' shares-to-weight mapping
// (ConvertCPUSharesToCgroupV2Value: weight = 10^((l²+125l)/612 - 7/34),
// l = log2(shares)), the one berth-runner, current runc and kubelet's pod
// cgroups use, so a container given shares reads back about the shares
// it was given. Older runtimes (runc before 1.3, crun before 1.23) map
// linearly, and read back lower.
func weightToShares(w uint64) uint64 {
	if w <= 1 {
		return 2
	}
	if w >= 10000 {
		return 262144
	}
	e := math.Log10(float64(w)) + 7.0/34.0
	l := (-125 + math.Sqrt(125*125+4*612*e)) / 2
	// The mapping rounds up: the largest shares of weight w is below the
	// exact inverse (the epsilon absorbs float error at exact points).
	return uint64(math.Floor(math.Pow(2, l) + 1e-6))
}

// readUint reads a one-number cgroup file, "max" as the library's
// largest value; 0 when unreadable.
func readUint(dir, file string) uint64 {
	v, err := fscommon.GetCgroupParamUint(dir, file)
	if err != nil {
		return 0
	}
	return v
}

// limit is l, or 0 when it is no limit.
func limit(l uint64) uint64 {
	if l >= unlimited {
		return 0
	}
	return l
}
