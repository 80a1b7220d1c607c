package stats

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// diskUsage measures dir like du: blocks allocated (directories
// included) and inodes, each inode once. containers/storage's
// directory.Usage counts apparent file sizes and no directories, which
// reads 0 for a container that only made directories or sparse files; so
// this walk is written here, on the same os.Root that keeps it inside
// dir whatever symlinks the container made.
func diskUsage(dir string) (used, inodes uint64, err error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return 0, 0, err
	}
	defer root.Close()
	seen := map[uint64]struct{}{}
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking
			}
			return err
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		if _, dup := seen[st.Ino]; dup {
			return nil // a hard link of one already counted
		}
		seen[st.Ino] = struct{}{}
		used += uint64(st.Blocks) * 512
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("measure %s: %w", dir, err)
	}
	return used, uint64(len(seen)), nil
}

// disk measures the container's writable layer.
func (c *Collector) disk(e *entry, id string) (*Disk, error) {
	if c.layer == nil {
		return nil, nil
	}
	if !e.layerDone {
		dir, mp, err := c.layer(id)
		if err != nil {
			return nil, err
		}
		e.layerDir, e.mountpoint, e.layerDone = dir, mp, true
	}
	if e.layerDir == "" {
		return nil, nil
	}
	used, inodes, err := diskUsage(e.layerDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // removed meanwhile
	}
	if err != nil {
		return nil, fmt.Errorf("writable layer: %w", err)
	}
	d := &Disk{Timestamp: time.Now(), Mountpoint: e.mountpoint, UsedBytes: used, Inodes: inodes}
	var fs unix.Statfs_t
	if err := unix.Statfs(e.layerDir, &fs); err == nil {
		d.Capacity, d.InodesFree = fs.Blocks*uint64(fs.Bsize), fs.Ffree
	}
	return d, nil
}
