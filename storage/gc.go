package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sirupsen/logrus"
	cstorage "go.podman.io/storage"
)

// sweepLayers removes layers that no image or container uses, and the
// pull scratch directory. Layers are committed one by one while a pull
// runs and the image record only at its end, so a pull that failed, was
// cancelled or died with berthd (SIGKILL) leaves such layers behind.
// containers/storage itself deletes layers it had flagged incomplete.
func (s *Store) sweepLayers() error {
	s.pullMu.Lock()
	defer s.pullMu.Unlock()
	if s.active == 0 {
		if err := clearDir(s.pullTmpDir()); err != nil {
			logrus.Warnf("storage: clearing %s: %v", s.pullTmpDir(), err)
		}
	}
	return s.sweepLayersLocked()
}

// sweepLayersLocked needs pullMu held and no pull running. It also takes
// rootfsMu, so a container layer being created is not mistaken for an
// orphan.
func (s *Store) sweepLayersLocked() error {
	s.rootfsMu.Lock()
	defer s.rootfsMu.Unlock()
	layers, err := s.store.Layers()
	if err != nil {
		return fmt.Errorf("list layers: %w", err)
	}
	parent := make(map[string]string, len(layers))
	for _, l := range layers {
		parent[l.ID] = l.Parent
	}
	used := map[string]bool{}
	mark := func(id string) {
		for id != "" && !used[id] {
			used[id] = true
			id = parent[id]
		}
	}
	images, err := s.store.Images()
	if err != nil {
		return fmt.Errorf("list images: %w", err)
	}
	for _, img := range images {
		mark(img.TopLayer)
		for _, l := range img.MappedTopLayers {
			mark(l)
		}
	}
	ctrs, err := s.store.Containers()
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	for _, c := range ctrs {
		mark(c.LayerID)
	}
	// Children before parents: a layer with children cannot go first.
	var errs []error
	for removed := true; removed; {
		removed = false
		children := map[string]int{}
		for _, l := range layers {
			children[l.Parent]++
		}
		var rest []cstorage.Layer
		for _, l := range layers {
			if used[l.ID] || children[l.ID] > 0 {
				rest = append(rest, l)
				continue
			}
			if err := s.store.DeleteLayer(l.ID); err != nil && !errors.Is(err, cstorage.ErrLayerUnknown) {
				errs = append(errs, fmt.Errorf("layer %s: %w", l.ID, err))
				rest = append(rest, l)
				continue
			}
			logrus.Infof("storage: removed layer %s that no image or container uses", l.ID)
			removed = true
		}
		layers = rest
	}
	return errors.Join(errs...)
}

// pullTmpDir is where containers/image keeps blobs while a pull runs:
// inside the graph root (not /var/tmp) so a crash's leftovers are found
// and removed at the next start.
func (s *Store) pullTmpDir() string { return filepath.Join(s.store.GraphRoot(), "pull-tmp") }

func clearDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		errs = append(errs, os.RemoveAll(filepath.Join(dir, e.Name())))
	}
	return errors.Join(errs...)
}
