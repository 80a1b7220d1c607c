package storage

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"go.podman.io/storage/pkg/archive"
)

// WriteContainerChanges writes what container id changed over its image
// as a tar of the added and modified files (taken from its mounted root
// filesystem) and returns the paths it deleted: a checkpoint archive's
// rootfs-diff.tar and deleted.files, in the layout CRI-O and Podman use.
// Paths at or below skip (the container's mount points, whose files the
// runtime made and whose contents are not the layer's) are left out.
//
// The container may be running and changing its files meanwhile, so what
// is read is never trusted to be what was listed: the tar is read through
// an os.Root of the root filesystem (go.podman.io/storage's archive), so
// a symlink the container puts in a listed path's place never leads the
// walk out of it.
func (s *Store) WriteContainerChanges(id string, skip []string, w io.Writer) (deleted []string, err error) {
	if err := checkContainerID(id); err != nil {
		return nil, err
	}
	c, err := s.store.Container(id)
	if err != nil {
		return nil, fmt.Errorf("changes of container %s: %w", id, err)
	}
	changes, err := s.store.Changes("", c.LayerID)
	if err != nil {
		return nil, fmt.Errorf("changes of container %s: %w", id, err)
	}
	root, err := s.MountContainerRootfs(id)
	if err != nil {
		return nil, err
	}
	fsRoot, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("changes of container %s: %w", id, err)
	}
	defer fsRoot.Close()
	var include []string
	for _, ch := range changes {
		p := path.Clean("/" + ch.Path)
		if under(p, skip) {
			continue
		}
		rel := strings.TrimPrefix(p, "/")
		switch ch.Kind {
		case archive.ChangeDelete:
			deleted = append(deleted, p)
			continue
		case archive.ChangeModify:
			// A modified directory is listed because something in it
			// changed, which is listed on its own; the tar walks what
			// it includes, so including the directory would take its
			// unchanged image files too.
			if fi, err := fsRoot.Lstat(rel); err != nil || fi.IsDir() {
				continue
			}
		}
		include = append(include, rel)
	}
	if len(include) == 0 {
		// An empty archive, still a tar.
		return deleted, tar.NewWriter(w).Close()
	}
	rd, err := archive.TarWithOptions(root, &archive.TarOptions{
		Compression:  archive.Uncompressed,
		IncludeFiles: include,
	})
	if err != nil {
		return nil, fmt.Errorf("changes of container %s: %w", id, err)
	}
	defer rd.Close()
	if _, err := io.Copy(w, rd); err != nil {
		return nil, fmt.Errorf("changes of container %s: %w", id, err)
	}
	return deleted, nil
}

// under reports whether p is one of dirs or beneath one.
func under(p string, dirs []string) bool {
	for _, d := range dirs {
		d = path.Clean("/" + d)
		if p == d || strings.HasPrefix(p, strings.TrimSuffix(d, "/")+"/") {
			return true
		}
	}
	return false
}
