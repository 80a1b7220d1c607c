package storage

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	cstorage "go.podman.io/storage"
	"go.podman.io/storage/pkg/archive"
	"go.podman.io/storage/pkg/chrootarchive"
)

// WriteContainerChanges writes what container id changed over its image
// as a tar of the added and modified entries and returns the paths it
// deleted: a checkpoint archive's rootfs-diff.tar and deleted.files, in the
// layout CRI-O and Podman use. Entries at or below skip (the container's
// mount points, whose files the runtime made and whose contents are not
// the layer's) are left out.
//
// The entries are the store's own diff of the writable layer (what a
// commit would make into a layer: read from the layer, symlinks as links,
// never followed), less its whiteouts, which deleted.files stands for; the
// deletions are the store's change list. The container may be running
// and writing meanwhile: the archive is one pass over the layer, not a
// snapshot.
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
	for _, ch := range changes {
		if p := path.Clean("/" + ch.Path); ch.Kind == archive.ChangeDelete && !under(p, skip) {
			deleted = append(deleted, p)
		}
	}
	uncompressed := archive.Uncompressed
	rc, err := s.store.Diff("", c.LayerID, &cstorage.DiffOptions{Compression: &uncompressed})
	if err != nil {
		return nil, fmt.Errorf("changes of container %s: %w", id, err)
	}
	defer rc.Close()
	if err := copyLayerEntries(rc, w, skip); err != nil {
		return nil, fmt.Errorf("changes of container %s: %w", id, err)
	}
	return deleted, nil
}

// copyLayerEntries copies a layer tar's entries to w, less whiteouts and
// what is under skip.
func copyLayerEntries(r io.Reader, w io.Writer, skip []string) error {
	tr, tw := tar.NewReader(r), tar.NewWriter(w)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		p := path.Clean("/" + h.Name)
		if p == "/" || strings.HasPrefix(path.Base(p), archive.WhiteoutPrefix) || under(p, skip) {
			continue
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
	return tw.Close()
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

// ApplyContainerChanges puts a checkpoint's layer changes on container
// id's root filesystem (mounted here if it is not): diff, a tar of the
// added and modified entries (rootfs-diff.tar), is unpacked in a chroot
// at the root filesystem (the store's chrootarchive), so no entry and no
// symlink in it or in the image reaches outside; then the deleted paths
// (deleted.files) are removed beneath the root (os.Root: a symlink on
// the way that leads out of it is an error, the last component is never
// followed). On the overlay driver the deletions become whiteouts in the
// container's layer, as the container's own rm made them.
func (s *Store) ApplyContainerChanges(id string, diff io.Reader, deleted []string) error {
	mnt, err := s.MountContainerRootfs(id)
	if err != nil {
		return err
	}
	if diff != nil {
		if err := chrootarchive.UntarUncompressed(diff, mnt, &archive.TarOptions{}); err != nil {
			return fmt.Errorf("apply the checkpoint's layer changes to container %s: %w", id, err)
		}
	}
	if len(deleted) == 0 {
		return nil
	}
	root, err := os.OpenRoot(mnt)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, p := range deleted {
		rel := strings.TrimPrefix(path.Clean("/"+p), "/")
		if rel == "" {
			continue
		}
		if err := root.RemoveAll(rel); err != nil {
			return fmt.Errorf("remove %s, deleted in the checkpoint, from container %s: %w", p, id, err)
		}
	}
	return nil
}
