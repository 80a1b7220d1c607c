package config

import (
	"fmt"
	"time"
)

// MemoryConfig tunes berthd's own memory: the Go garbage collector, and
// giving back to the kernel what a burst of work (a pull, pods starting
// or going away) left behind. It is read at start only. The GOGC and
// GOMEMLIMIT environment variables, when set, win over the first two
// keys, as they do for any Go program.
type MemoryConfig struct {
	// GCPercent is the Go collector's GOGC: how far the heap may grow
	// past what the last collection kept before the next one starts.
	// Lower keeps less garbage around between collections at the cost
	// of collecting more often; negative turns collection off (0, which
	// would collect without pause, is refused).
	GCPercent int `toml:"gc_percent"`
	// SoftLimit is the Go runtime's soft memory limit (GOMEMLIMIT), in
	// bytes: near it the collector runs more often and returns free
	// pages sooner, rather than let the process grow. 0 is no limit.
	SoftLimit int64 `toml:"soft_limit"`
	// ReleaseAfterIdle returns freed memory to the kernel, and drops
	// berthd's mappings of its own program pages that no request uses
	// any more, once this long has passed with no image pull and no pod
	// or container change in flight. 0 leaves it to the Go runtime's
	// background scavenger, which returns memory over minutes.
	ReleaseAfterIdle Duration `toml:"release_after_idle"`
}

func defaultMemory() MemoryConfig {
	return MemoryConfig{GCPercent: 100, ReleaseAfterIdle: Duration{time.Second}}
}

func (m *MemoryConfig) validate() error {
	if m.GCPercent == 0 {
		return fmt.Errorf("key memory.gc_percent: 0 would collect without pause (100 is Go's default; negative turns collection off)")
	}
	if m.SoftLimit < 0 {
		return fmt.Errorf("key memory.soft_limit: %d is negative (0 is no limit)", m.SoftLimit)
	}
	if m.ReleaseAfterIdle.Duration < 0 {
		return fmt.Errorf("key memory.release_after_idle: %s is negative (0 is never)", m.ReleaseAfterIdle)
	}
	return nil
}
