package stats

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// Bounds of one writable-layer walk (a container may make its layer as
// large and as deep as its disk allows): the walk stops at the first, and
// its sample says it is partial. A partial sample answers for
// PartialMaxAge, so a container that makes walks long costs berthd at
// most DefaultWalkTime of one core per PartialMaxAge.
const (
	DefaultWalkTime    = 5 * time.Second
	DefaultWalkEntries = 2_000_000
	PartialMaxAge      = time.Minute
)

// diskFlight is one walk of a container's layer, shared by every caller
// that asks while it runs; it is cancelled when they all gave up.
type diskFlight struct {
	done    chan struct{}
	waiters int
	cancel  context.CancelFunc
	d       *Disk
	err     error
}

// disk answers the container's writable-layer use: the last walk's, when
// it is recent, else a walk shared with concurrent callers. The entry's
// lock is only held to look; the walk runs without it, and its sample is
// stamped when it ends.
func (c *Collector) disk(ctx context.Context, e *entry, id string) (*Disk, error) {
	if c.layer == nil {
		return nil, nil
	}
	e.mu.Lock()
	if !e.layerDone {
		dir, mp, err := c.layer(id)
		if err != nil {
			e.mu.Unlock()
			return nil, err
		}
		e.layerDir, e.mountpoint, e.layerDone = dir, mp, true
	}
	if e.layerDir == "" {
		e.mu.Unlock()
		return nil, nil
	}
	if e.diskAt != (time.Time{}) && time.Since(e.diskAt) < c.diskMaxAge(e.disk) {
		d := e.disk
		e.mu.Unlock()
		return d, nil
	}
	f := e.flight
	if f == nil {
		wctx, cancel := context.WithTimeout(context.Background(), c.walkTime)
		f = &diskFlight{done: make(chan struct{}), cancel: cancel}
		e.flight = f
		go c.walk(wctx, e, f, id, e.layerDir, e.mountpoint)
	}
	f.waiters++
	e.mu.Unlock()

	select {
	case <-f.done:
		return f.d, f.err
	case <-ctx.Done():
		e.mu.Lock()
		if f.waiters--; f.waiters == 0 {
			f.cancel()
			e.flight = nil // a later caller walks afresh
		}
		e.mu.Unlock()
		return nil, fmt.Errorf("writable layer: %w", ctx.Err())
	}
}

func (c *Collector) diskMaxAge(d *Disk) time.Duration {
	if d != nil && d.Partial != "" {
		return max(c.maxAge, PartialMaxAge)
	}
	return c.maxAge
}

// walk measures dir for f's callers and keeps the sample unless they all
// left before it was done.
func (c *Collector) walk(ctx context.Context, e *entry, f *diskFlight, id, dir, mountpoint string) {
	defer f.cancel()
	c.walks.Add(1)
	d, err := measure(ctx, dir, mountpoint, c.walkEntries)
	e.mu.Lock()
	defer e.mu.Unlock()
	f.d, f.err = d, err
	abandoned := errors.Is(context.Cause(ctx), context.Canceled)
	if err == nil && !abandoned {
		e.disk, e.diskAt = d, time.Now()
		if d != nil && d.Partial != "" {
			logrus.WithField("container", id).Warnf("stats: writable layer %s: %s; its use is reported as counted so far", dir, d.Partial)
		}
	}
	if e.flight == f {
		e.flight = nil
	}
	close(f.done)
}

// measure walks dir; nil when it is gone.
func measure(ctx context.Context, dir, mountpoint string, maxEntries int) (*Disk, error) {
	n, err := walkDisk(ctx, dir, maxEntries)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // removed meanwhile
	}
	if err != nil {
		return nil, fmt.Errorf("writable layer: %w", err)
	}
	d := &Disk{Timestamp: time.Now(), Mountpoint: mountpoint, UsedBytes: n.used, Inodes: n.inodes, Partial: n.partial}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err == nil {
		d.Capacity, d.InodesFree = st.Blocks*uint64(st.Bsize), st.Ffree
	}
	return d, nil
}
