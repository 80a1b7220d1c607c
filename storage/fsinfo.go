package storage

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// FsUsage is what one part of the store takes on disk.
type FsUsage struct {
	// Mountpoint is the directory the usage is of (the CRI's FsId).
	Mountpoint string
	UsedBytes  uint64
	InodesUsed uint64
	// Timestamp is when the usage was measured.
	Timestamp time.Time
}

// fsCacheTTL: kubelet asks for ImageFsInfo every few seconds, and walking
// a large store is not free. Usage a few seconds old is fine for its
// garbage collection and eviction decisions.
const fsCacheTTL = 5 * time.Second

type fsCache struct {
	mu         sync.Mutex // held during a walk: concurrent callers share it
	at         time.Time
	images     FsUsage
	containers FsUsage
}

// FsInfo returns the disk use of images (the graph root, less container
// layers) and of container filesystems (their writable layers and
// per-container directories). Results are cached for a few seconds.
func (s *Store) FsInfo(ctx context.Context) (images, containers FsUsage, err error) {
	s.fs.mu.Lock()
	defer s.fs.mu.Unlock()
	if time.Since(s.fs.at) < fsCacheTTL {
		return s.fs.images, s.fs.containers, nil
	}
	images, containers, err = s.measure(ctx)
	if err != nil {
		return FsUsage{}, FsUsage{}, err
	}
	s.fs.images, s.fs.containers, s.fs.at = images, containers, time.Now()
	return images, containers, nil
}

// measure walks the graph root once, like du -x: each inode counted once
// (hard links), nothing below another filesystem (mounted container
// roots). A directory named after a container's layer, and the driver's
// per-container directory, count as container use; the rest as images.
func (s *Store) measure(ctx context.Context) (images, containers FsUsage, err error) {
	root := s.store.GraphRoot()
	ctrDir := filepath.Join(root, s.driver+"-containers")
	ctrLayers := map[string]bool{}
	ctrs, err := s.store.Containers()
	if err != nil {
		return images, containers, fmt.Errorf("list containers: %w", err)
	}
	for _, c := range ctrs {
		ctrLayers[c.LayerID] = true
	}
	var rootDev uint64
	if st, err := os.Stat(root); err == nil {
		rootDev = uint64(st.Sys().(*syscall.Stat_t).Dev)
	} else {
		return images, containers, fmt.Errorf("stat %s: %w", root, err)
	}
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	// inContainer holds directories whose subtree counts as container use.
	inContainer := map[string]bool{ctrDir: true}
	now := time.Now()
	images = FsUsage{Mountpoint: root, Timestamp: now}
	containers = FsUsage{Mountpoint: ctrDir, Timestamp: now}
	walkErr := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) || os.IsPermission(err) {
				return nil // removed while walking, or unreadable: skip
			}
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		if d.IsDir() && uint64(st.Dev) != rootDev {
			return filepath.SkipDir
		}
		dir := filepath.Dir(p)
		owned := inContainer[dir] || inContainer[p] || (d.IsDir() && ctrLayers[d.Name()])
		if d.IsDir() && owned {
			inContainer[p] = true
		}
		// Only a directory (through a bind mount) or a hard-linked file
		// can come twice; remembering just those, as du does, keeps the
		// walk's memory small on a store of millions of files.
		if d.IsDir() || st.Nlink > 1 {
			key := inode{uint64(st.Dev), st.Ino}
			if seen[key] {
				return nil
			}
			seen[key] = true
		}
		u := &images
		if owned {
			u = &containers
		}
		u.UsedBytes += uint64(st.Blocks) * 512
		u.InodesUsed++
		return nil
	})
	if walkErr != nil {
		return FsUsage{}, FsUsage{}, fmt.Errorf("measure %s: %w", root, walkErr)
	}
	return images, containers, nil
}
