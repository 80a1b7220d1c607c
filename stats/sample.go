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
	// Tasks is nil without the pids controller.
	Tasks *Tasks
	// Devices are the block devices the cgroup did I/O on.
	Devices []Device
	// OOMKills is the cgroup's OOM-killed processes, nil where the
	// kernel does not count them.
	OOMKills *uint64
	// Spec is the limits set on the cgroup.
	Spec *Spec
}

// Tasks is what a cgroup's processes use of the kernel's tables.
type Tasks struct {
	// Threads is pids.current (every task), ThreadsMax pids.max (0 when
	// unlimited).
	Threads, ThreadsMax uint64
	// FileDescriptors and Sockets are the open descriptors of the
	// cgroup's processes, and those of them that are sockets.
	FileDescriptors, Sockets uint64
}

// Device is a cgroup's I/O on one block device, cumulative, by operation
// as the kernel names it (Read, Write, Sync, Async, Discard, Total).
type Device struct {
	Major, Minor uint64
	// Name is /dev/<name>, or "major:minor" when sysfs has none.
	Name string
	// Bytes are bytes transferred, Ops the I/Os completed.
	Bytes, Ops map[string]uint64
}

// Spec is the limits set on a cgroup; 0 is none set (or not readable).
type Spec struct {
	// CPUPeriod and CPUQuota are the CFS quota's, in microseconds.
	CPUPeriod, CPUQuota uint64
	// CPUShares is v1's cpu.shares, or v2's cpu.weight mapped back.
	CPUShares uint64
	// MemorySwapLimit is memory+swap, MemoryReservation the soft limit
	// (v1 memory.soft_limit_in_bytes, v2 memory.low).
	MemorySwapLimit, MemoryReservation uint64
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
	// Capacity and InodesFree are the filesystem's (statfs).
	Capacity, InodesFree uint64
	// Partial, if set, says why the walk stopped before the end (a bound
	// of time or entries, or a directory moved under it): UsedBytes and
	// Inodes are then what it counted, a lower bound.
	Partial string
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
