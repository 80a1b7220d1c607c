package storage

import (
	"errors"
	"fmt"
	"path/filepath"

	cstorage "go.podman.io/storage"
)

// WritableLayer returns the directory holding what container id wrote
// over its image (overlay's upper directory; for vfs, whose layers are
// full copies, the layer's whole tree) and the store's graph root, the
// mount point ImageFsInfo reports. An unknown container has none: "".
func (s *Store) WritableLayer(id string) (dir, mountpoint string, err error) {
	if err := checkContainerID(id); err != nil {
		return "", "", err
	}
	c, err := s.store.Container(id)
	if errors.Is(err, cstorage.ErrContainerUnknown) {
		return "", "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("writable layer of container %s: %w", id, err)
	}
	root := s.store.GraphRoot()
	driver, err := s.store.GraphDriver()
	if err != nil {
		return "", "", fmt.Errorf("writable layer of container %s: %w", id, err)
	}
	md, err := driver.Metadata(c.LayerID)
	if err != nil {
		return "", "", fmt.Errorf("writable layer of container %s: %w", id, err)
	}
	if upper := md["UpperDir"]; upper != "" {
		return upper, root, nil
	}
	if s.driver == "vfs" {
		return filepath.Join(root, "vfs", "dir", c.LayerID), root, nil
	}
	return "", root, nil
}
