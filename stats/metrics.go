package stats

import (
	"sort"
	"strconv"
	"time"
)

// Descriptor is one metric with the name, help and labels cAdvisor gives
// it, so kubelet's /metrics/cadvisor serves the same series from the
// CRI (PodAndContainerStatsFromCRI) as it did from cAdvisor.
type Descriptor struct {
	Name    string
	Help    string
	Labels  []string
	Counter bool
}

// Value is one series of a metric: its label values are in the order of
// its Descriptor's Labels. The CRI carries values as whole numbers, so
// the _seconds counters are whole seconds.
type Value struct {
	Name    string
	Labels  []string
	Value   uint64
	Counter bool
}

// Identity labels a container's or pod's series as cAdvisor does: the
// container's name ("" for the pod's own series), its cgroup as id, its
// image, its runtime id as name, and the pod's namespace and name.
type Identity struct {
	Container, ID, Image, Name, Namespace, Pod string
	// Started is when the container started (the pod was made), for
	// container_start_time_seconds; not a label. Zero: not started.
	Started time.Time
}

func (i Identity) labels(extra ...string) []string {
	return append([]string{i.Container, i.ID, i.Image, i.Name, i.Namespace, i.Pod}, extra...)
}

var baseLabels = []string{"container", "id", "image", "name", "namespace", "pod"}

func withLabels(extra ...string) []string {
	return append(append([]string(nil), baseLabels...), extra...)
}

// descriptors are every metric berthd serves, by name.
var descriptors = []Descriptor{
	{"container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", withLabels("cpu"), true},
	{"container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.", withLabels(), true},
	{"container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.", withLabels(), true},
	{"container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.", withLabels(), true},
	{"container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.", withLabels(), true},
	{"container_cpu_cfs_throttled_seconds_total", "Total time duration the container has been throttled.", withLabels(), true},
	{"container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed.", withLabels(), false},
	{"container_memory_working_set_bytes", "Current working set in bytes.", withLabels(), false},
	{"container_memory_rss", "Size of RSS in bytes.", withLabels(), false},
	{"container_memory_cache", "Number of bytes of page cache memory.", withLabels(), false},
	{"container_memory_mapped_file", "Size of memory mapped files in bytes.", withLabels(), false},
	{"container_memory_swap", "Container swap usage in bytes.", withLabels(), false},
	{"container_memory_kernel_usage", "Size of kernel memory allocated in bytes.", withLabels(), false},
	{"container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes.", withLabels(), false},
	{"container_memory_failcnt", "Number of memory usage hits limits.", withLabels(), true},
	{"container_memory_failures_total", "Cumulative count of memory allocation failures.", withLabels("failure_type", "scope"), true},
	{"container_spec_memory_limit_bytes", "Memory limit for the container.", withLabels(), false},
	{"container_processes", "Number of processes running inside the container.", withLabels(), false},
	{"container_fs_usage_bytes", "Number of bytes that are consumed by the container on this filesystem.", withLabels("device"), false},
	{"container_fs_inodes_total", "Number of Inodes.", withLabels("device"), false},
	{"container_pressure_cpu_waiting_seconds_total", "Total time duration tasks in the container have waited due to CPU pressure.", withLabels(), true},
	{"container_pressure_cpu_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to CPU congestion.", withLabels(), true},
	{"container_pressure_memory_waiting_seconds_total", "Total time duration tasks in the container have waited due to memory pressure.", withLabels(), true},
	{"container_pressure_memory_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to memory congestion.", withLabels(), true},
	{"container_pressure_io_waiting_seconds_total", "Total time duration tasks in the container have waited due to IO pressure.", withLabels(), true},
	{"container_pressure_io_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to IO congestion.", withLabels(), true},
	{"container_blkio_device_usage_total", "Blkio Device bytes usage", withLabels("device", "major", "minor", "operation"), true},
	{"container_fs_reads_bytes_total", "Cumulative count of bytes read", withLabels("device"), true},
	{"container_fs_reads_total", "Cumulative count of reads completed", withLabels("device"), true},
	{"container_fs_writes_bytes_total", "Cumulative count of bytes written", withLabels("device"), true},
	{"container_fs_writes_total", "Cumulative count of writes completed", withLabels("device"), true},
	{"container_fs_limit_bytes", "Number of bytes that can be consumed by the container on this filesystem.", withLabels("device"), false},
	{"container_fs_inodes_free", "Number of available Inodes", withLabels("device"), false},
	{"container_file_descriptors", "Number of open file descriptors for the container.", withLabels(), false},
	{"container_sockets", "Number of open sockets for the container.", withLabels(), false},
	{"container_threads", "Number of threads running inside the container", withLabels(), false},
	{"container_threads_max", "Maximum number of threads allowed inside the container, infinity if value is zero", withLabels(), false},
	{"container_oom_events_total", "Count of out of memory events observed for the container", withLabels(), true},
	{"container_last_seen", "Last time a container was seen by the exporter", withLabels(), false},
	{"container_start_time_seconds", "Start time of the container since unix epoch in seconds.", withLabels(), false},
	{"container_spec_cpu_period", "CPU period of the container.", withLabels(), false},
	{"container_spec_cpu_quota", "CPU quota of the container.", withLabels(), false},
	{"container_spec_cpu_shares", "CPU share of the container.", withLabels(), false},
	{"container_spec_memory_reservation_limit_bytes", "Memory reservation limit for the container.", withLabels(), false},
	{"container_spec_memory_swap_limit_bytes", "Memory swap limit for the container.", withLabels(), false},
	{"container_network_receive_bytes_total", "Cumulative count of bytes received.", withLabels("interface"), true},
	{"container_network_receive_packets_total", "Cumulative count of packets received.", withLabels("interface"), true},
	{"container_network_receive_errors_total", "Cumulative count of errors encountered while receiving.", withLabels("interface"), true},
	{"container_network_receive_packets_dropped_total", "Cumulative count of packets dropped while receiving.", withLabels("interface"), true},
	{"container_network_transmit_bytes_total", "Cumulative count of bytes transmitted.", withLabels("interface"), true},
	{"container_network_transmit_packets_total", "Cumulative count of packets transmitted.", withLabels("interface"), true},
	{"container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting.", withLabels("interface"), true},
	{"container_network_transmit_packets_dropped_total", "Cumulative count of packets dropped while transmitting.", withLabels("interface"), true},
}

var counters = func() map[string]bool {
	m := map[string]bool{}
	for _, d := range descriptors {
		m[d.Name] = d.Counter
	}
	return m
}()

// Descriptors returns every metric's descriptor.
func Descriptors() []Descriptor {
	out := make([]Descriptor, len(descriptors))
	copy(out, descriptors)
	return out
}

// values collects series, each metric's kind from its descriptor.
type values []Value

func (v *values) add(name string, labels []string, x uint64) {
	*v = append(*v, Value{Name: name, Labels: labels, Value: x, Counter: counters[name]})
}

func seconds(nanos uint64) uint64 { return nanos / uint64(time.Second) }

// ContainerMetrics are a container's series: CPU, memory, processes,
// pressure and its writable layer.
func ContainerMetrics(id Identity, s *ContainerSample) []Value {
	var v values
	v.cgroup(id, &s.Sample)
	if d := s.Disk; d != nil {
		v.add("container_fs_usage_bytes", id.labels(d.Mountpoint), d.UsedBytes)
		v.add("container_fs_inodes_total", id.labels(d.Mountpoint), d.Inodes)
		v.add("container_fs_limit_bytes", id.labels(d.Mountpoint), d.Capacity)
		v.add("container_fs_inodes_free", id.labels(d.Mountpoint), d.InodesFree)
	}
	return v
}

// PodMetrics are a pod's own series: its cgroup's, and its network
// interfaces' (cAdvisor reports the network on the pod, not on each
// container, since they share it).
func PodMetrics(id Identity, s *PodSample) []Value {
	var v values
	v.cgroup(id, &s.Sample)
	if s.Network != nil {
		for _, i := range s.Network.Interfaces {
			l := id.labels(i.Name)
			v.add("container_network_receive_bytes_total", l, i.RxBytes)
			v.add("container_network_receive_packets_total", l, i.RxPackets)
			v.add("container_network_receive_errors_total", l, i.RxErrors)
			v.add("container_network_receive_packets_dropped_total", l, i.RxDropped)
			v.add("container_network_transmit_bytes_total", l, i.TxBytes)
			v.add("container_network_transmit_packets_total", l, i.TxPackets)
			v.add("container_network_transmit_errors_total", l, i.TxErrors)
			v.add("container_network_transmit_packets_dropped_total", l, i.TxDropped)
		}
	}
	return v
}

func (v *values) cgroup(id Identity, s *Sample) {
	l := id.labels()
	if !s.Timestamp.IsZero() {
		v.add("container_last_seen", l, uint64(s.Timestamp.Unix()))
	}
	if !id.Started.IsZero() {
		v.add("container_start_time_seconds", l, uint64(id.Started.Unix()))
	}
	if c := s.CPU; c != nil {
		v.add("container_cpu_usage_seconds_total", id.labels("total"), seconds(c.UsageNanos))
		v.add("container_cpu_user_seconds_total", l, seconds(c.UserNanos))
		v.add("container_cpu_system_seconds_total", l, seconds(c.SystemNanos))
		v.add("container_cpu_cfs_periods_total", l, c.Periods)
		v.add("container_cpu_cfs_throttled_periods_total", l, c.ThrottledPeriods)
		v.add("container_cpu_cfs_throttled_seconds_total", l, seconds(c.ThrottledNanos))
		if p := c.PSI; p != nil {
			v.add("container_pressure_cpu_waiting_seconds_total", l, p.Some.Total/1e6)
			v.add("container_pressure_cpu_stalled_seconds_total", l, p.Full.Total/1e6)
		}
	}
	if m := s.Memory; m != nil {
		v.add("container_memory_usage_bytes", l, m.Usage)
		v.add("container_memory_working_set_bytes", l, m.WorkingSet)
		v.add("container_memory_rss", l, m.RSS)
		v.add("container_memory_cache", l, m.Cache)
		v.add("container_memory_mapped_file", l, m.MappedFile)
		v.add("container_memory_kernel_usage", l, m.KernelUsage)
		v.add("container_memory_max_usage_bytes", l, m.MaxUsage)
		v.add("container_memory_failcnt", l, m.Failcnt)
		v.add("container_memory_failures_total", id.labels("pgfault", "container"), m.PageFaults)
		v.add("container_memory_failures_total", id.labels("pgmajfault", "container"), m.MajorPageFaults)
		v.add("container_spec_memory_limit_bytes", l, m.Limit)
		if m.Swap != nil {
			v.add("container_memory_swap", l, m.Swap.Usage)
		}
		if p := m.PSI; p != nil {
			v.add("container_pressure_memory_waiting_seconds_total", l, p.Some.Total/1e6)
			v.add("container_pressure_memory_stalled_seconds_total", l, p.Full.Total/1e6)
		}
	}
	if p := s.IOPSI; p != nil {
		v.add("container_pressure_io_waiting_seconds_total", l, p.Some.Total/1e6)
		v.add("container_pressure_io_stalled_seconds_total", l, p.Full.Total/1e6)
	}
	if s.Processes != nil {
		v.add("container_processes", l, *s.Processes)
	}
	if t := s.Tasks; t != nil {
		v.add("container_threads", l, t.Threads)
		v.add("container_threads_max", l, t.ThreadsMax)
		v.add("container_file_descriptors", l, t.FileDescriptors)
		v.add("container_sockets", l, t.Sockets)
	}
	if s.OOMKills != nil {
		v.add("container_oom_events_total", l, *s.OOMKills)
	}
	if sp := s.Spec; sp != nil {
		v.spec(l, sp)
	}
	v.devices(id, s.Devices)
}

// spec reports the limits cAdvisor does: the CFS period and quota only
// when set, the others always (0 for none).
func (v *values) spec(l []string, sp *Spec) {
	if sp.CPUPeriod > 0 {
		v.add("container_spec_cpu_period", l, sp.CPUPeriod)
	}
	if sp.CPUQuota > 0 {
		v.add("container_spec_cpu_quota", l, sp.CPUQuota)
	}
	v.add("container_spec_cpu_shares", l, sp.CPUShares)
	v.add("container_spec_memory_reservation_limit_bytes", l, sp.MemoryReservation)
	v.add("container_spec_memory_swap_limit_bytes", l, sp.MemorySwapLimit)
}

// devices reports each device's bytes by operation, and its reads and
// writes as the fs_ series.
func (v *values) devices(id Identity, ds []Device) {
	for _, d := range ds {
		major, minor := strconv.FormatUint(d.Major, 10), strconv.FormatUint(d.Minor, 10)
		ops := make([]string, 0, len(d.Bytes))
		for op := range d.Bytes {
			ops = append(ops, op)
		}
		sort.Strings(ops)
		for _, op := range ops {
			v.add("container_blkio_device_usage_total", id.labels(d.Name, major, minor, op), d.Bytes[op])
		}
		l := id.labels(d.Name)
		v.add("container_fs_reads_bytes_total", l, d.Bytes["Read"])
		v.add("container_fs_reads_total", l, d.Ops["Read"])
		v.add("container_fs_writes_bytes_total", l, d.Bytes["Write"])
		v.add("container_fs_writes_total", l, d.Ops["Write"])
	}
}
