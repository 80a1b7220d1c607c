// Package stats reads what kubelet's CRI stats provider asks for: a
// container's or pod's CPU, memory, processes and pressure from its
// cgroup (through opencontainers/cgroups, v1 or v2), a container's
// writable-layer use from storage, a pod's interface counters from its
// pinned network namespace. Reads happen on demand, behind a cache of one
// sample per container or pod: callers within MaxAge of a sample share
// it, so kubelet's summary, its eviction manager and a metrics scrape
// arriving together read the files once.
package stats

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/cgroups"
)

// DefaultMaxAge is how long a sample answers for its container or pod.
const DefaultMaxAge = time.Second

// Options configure a Collector.
type Options struct {
	// CgroupRoot is the cgroup filesystem, /sys/fs/cgroup when empty.
	CgroupRoot string
	// CgroupV2 says the unified hierarchy is the one (nil: detect).
	CgroupV2 *bool
	// MaxAge is how long a sample is reused (DefaultMaxAge when 0).
	MaxAge time.Duration
	// WritableLayer names a container's writable layer directory and the
	// mount point of its filesystem; nil, or an empty dir, for none.
	WritableLayer func(id string) (dir, mountpoint string, err error)
	// WalkTime and WalkEntries bound one walk of a writable layer
	// (DefaultWalkTime and DefaultWalkEntries when 0).
	WalkTime    time.Duration
	WalkEntries int
}

// Collector reads and caches samples.
type Collector struct {
	root   string
	v2     bool
	maxAge time.Duration
	layer  func(id string) (string, string, error)

	walkTime    time.Duration
	walkEntries int
	walks       atomic.Int64 // writable-layer walks started

	mu      sync.Mutex
	entries map[string]*entry
}

// entry is one container's or pod's cache. Its mutex is held during a
// cgroup read (a few small files), so concurrent callers for one id wait
// for one read; never during a walk of the writable layer (see disk).
type entry struct {
	mu     sync.Mutex
	cgroup string
	reader *cgroupReader
	// layerDir and mountpoint are resolved once; layerDone says so.
	layerDir, mountpoint string
	layerDone            bool
	// last is the latest sample, at; prev CPU use feeds NanoCores.
	at      time.Time
	last    any // *ContainerSample or *PodSample
	cpuAt   time.Time
	cpuUsed uint64
	hasCPU  bool
	// disk is the writable layer's last walk, stamped diskAt when it
	// ended; flight is the walk under way.
	disk   *Disk
	diskAt time.Time
	flight *diskFlight
}

// New returns a Collector.
func New(o Options) *Collector {
	c := &Collector{
		root:    o.CgroupRoot,
		maxAge:  o.MaxAge,
		layer:   o.WritableLayer,
		entries: map[string]*entry{},

		walkTime:    o.WalkTime,
		walkEntries: o.WalkEntries,
	}
	if c.walkTime == 0 {
		c.walkTime = DefaultWalkTime
	}
	if c.walkEntries == 0 {
		c.walkEntries = DefaultWalkEntries
	}
	if c.root == "" {
		c.root = defaultCgroupRoot
	}
	if c.maxAge == 0 {
		c.maxAge = DefaultMaxAge
	}
	if o.CgroupV2 != nil {
		c.v2 = *o.CgroupV2
	} else {
		c.v2 = cgroups.IsCgroup2UnifiedMode()
	}
	return c
}

// CgroupV2 reports whether the collector reads cgroup v2.
func (c *Collector) CgroupV2() bool { return c.v2 }

// Container samples container id, whose cgroup is cgroupPath. It gives
// up when ctx ends (a walk of its writable layer goes on for other
// callers, within its bounds).
func (c *Collector) Container(ctx context.Context, id, cgroupPath string) (*ContainerSample, error) {
	e := c.entry(id, cgroupPath)
	base, err := c.containerCgroup(e)
	if err != nil {
		return nil, fmt.Errorf("stats of container %s: %w", id, err)
	}
	s := &ContainerSample{Sample: *base}
	if s.Disk, err = c.disk(ctx, e, id); err != nil {
		return nil, fmt.Errorf("stats of container %s: %w", id, err)
	}
	return s, nil
}

// containerCgroup is the container's cgroup sample, read again when the
// last is older than MaxAge.
func (c *Collector) containerCgroup(e *entry) (*Sample, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s, ok := e.last.(*Sample); ok && time.Since(e.at) < c.maxAge {
		return s, nil
	}
	base, err := c.readCgroup(e)
	if err != nil {
		return nil, err
	}
	e.last, e.at = &base, base.Timestamp
	return &base, nil
}

// Walks is the number of writable-layer walks started.
func (c *Collector) Walks() int64 { return c.walks.Load() }

// Pod samples pod id: its cgroup and, when netnsPath is not empty, the
// interfaces of its network namespace.
func (c *Collector) Pod(id, cgroupPath, netnsPath string) (*PodSample, error) {
	e := c.entry(id, cgroupPath)
	e.mu.Lock()
	defer e.mu.Unlock()
	if s, ok := e.last.(*PodSample); ok && time.Since(e.at) < c.maxAge {
		return s, nil
	}
	base, err := c.readCgroup(e)
	if err != nil {
		return nil, fmt.Errorf("stats of pod %s: %w", id, err)
	}
	s := &PodSample{Sample: base}
	if netnsPath != "" {
		if s.Network, err = readNetwork(netnsPath); err != nil {
			return nil, fmt.Errorf("stats of pod %s: %w", id, err)
		}
	}
	e.last, e.at = s, base.Timestamp
	return s, nil
}

// Forget drops what is cached of id (its container or pod is gone).
func (c *Collector) Forget(id string) {
	c.mu.Lock()
	delete(c.entries, id)
	c.mu.Unlock()
}

// Cached is the number of containers and pods with a cache entry.
func (c *Collector) Cached() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

func (c *Collector) entry(id, cgroupPath string) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[id]
	if e == nil || e.cgroup != cgroupPath {
		e = &entry{cgroup: cgroupPath}
		c.entries[id] = e
	}
	return e
}

// readCgroup takes a new sample of e's cgroup; NanoCores comes from the
// CPU use of the sample before. A cgroup that is gone gives a sample
// with only a timestamp.
func (c *Collector) readCgroup(e *entry) (Sample, error) {
	now := time.Now()
	if e.reader == nil {
		r, err := newCgroupReader(c.root, c.v2, e.cgroup)
		if err != nil {
			return Sample{}, err
		}
		e.reader = r
	}
	st, err := e.reader.read()
	if errors.Is(err, errGone) {
		// Made again later (a container created, then started): look
		// for it afresh next time.
		e.reader, e.hasCPU = nil, false
		return Sample{Timestamp: now}, nil
	}
	if err != nil {
		return Sample{}, err
	}
	s := e.reader.sample(st)
	s.Timestamp = now
	used := s.CPU.UsageNanos
	if e.hasCPU && used >= e.cpuUsed && now.After(e.cpuAt) {
		nc := uint64(float64(used-e.cpuUsed) * 1e9 / float64(now.Sub(e.cpuAt).Nanoseconds()))
		s.CPU.NanoCores = &nc
	}
	e.cpuAt, e.cpuUsed, e.hasCPU = now, used, true
	return s, nil
}
