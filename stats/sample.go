package stats

import (
	"time"

	"github.com/opencontainers/cgroups"
)

// Sample is one reading of a cgroup. A nil part was not there to read: a
// cgroup that is gone (the container exited) has no CPU or Memory.
type Sample struct {
	Timestamp time.Time
	CPU       *CPU
	Memory    *Memory
	// Processes is the cgroup's pids.current, when the pids controller
	// is there.
	Processes *uint64
	// IOPSI is io.pressure (cgroup v2 only).
	IOPSI *cgroups.PSIStats
}

// CPU is a cgroup's CPU use.
type CPU struct {
	// UsageNanos is the cumulative CPU time of every core, user and
	// system; UserNanos and SystemNanos split it.
	UsageNanos, UserNanos, SystemNanos uint64
	// NanoCores is the average use between the previous sample and this
	// one, in core-nanoseconds per second (a busy core is 1e9). Nil for
	// a cgroup's first sample, as it needs two.
	NanoCores *uint64
	// Periods, ThrottledPeriods and ThrottledNanos are the CFS quota's.
	Periods, ThrottledPeriods, ThrottledNanos uint64
	// PSI is cpu.pressure (cgroup v2 only).
	PSI *cgroups.PSIStats
}

// Memory is a cgroup's memory use, in bytes, with kubelet's meanings.
type Memory struct {
	// Usage is all memory charged, page cache included.
	Usage uint64
	// WorkingSet is Usage less the inactive page cache, what kubelet
	// evicts on and reports to `kubectl top`.
	WorkingSet uint64
	// RSS is anonymous memory and swap cache.
	RSS, Cache, MappedFile, KernelUsage, MaxUsage, Failcnt uint64
	// PageFaults and MajorPageFaults are cumulative counts.
	PageFaults, MajorPageFaults uint64
	// Limit is the cgroup's limit, 0 when unlimited; Available is
	// Limit - WorkingSet, nil when unlimited.
	Limit     uint64
	Available *uint64
	// Swap is nil where the kernel does not account swap.
	Swap *Swap
	// PSI is memory.pressure (cgroup v2 only).
	PSI *cgroups.PSIStats
}

// Swap is a cgroup's swap use; Available is nil when unlimited.
type Swap struct {
	Usage     uint64
	Limit     uint64
	Available *uint64
}

// Disk is the use of a container's writable layer.
type Disk struct {
	Timestamp time.Time
	// Mountpoint is the directory of the filesystem the layer is on (the
	// store's graph root, as ImageFsInfo reports it).
	Mountpoint string
	UsedBytes  uint64
	Inodes     uint64
}

// Network is the interfaces of a pod's network namespace, loopback left
// out.
type Network struct {
	Timestamp  time.Time
	Interfaces []Interface
}

// Interface is one network interface's cumulative counters.
type Interface struct {
	Name                                    string
	RxBytes, RxPackets, RxErrors, RxDropped uint64
	TxBytes, TxPackets, TxErrors, TxDropped uint64
}

// ContainerSample is a container's cgroup and writable layer.
type ContainerSample struct {
	Sample
	// Disk is nil when the container has no writable layer (any more).
	Disk *Disk
}

// PodSample is a pod's cgroup and network.
type PodSample struct {
	Sample
	// Network is nil for a pod without a network namespace of its own
	// (host network, or stopped).
	Network *Network
}
