package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	cstorage "go.podman.io/storage"

	"github.com/berth-cri/berth/errdefs"
)

// ImageVolume is an image mounted for a container as a volume (the CRI's
// Mount.image, KEP-4639).
type ImageVolume struct {
	// Path is the host path to bind-mount read-only: the image's root, or
	// the sub path asked for inside it.
	Path string
	// ImageID and ImageRef name the image as ContainerStatus reports it.
	ImageID  string
	ImageRef string
}

// volumeMeta marks a store container that is an image volume of a CRI
// container, so removing the owner removes it and a crash leaves none
// without an owner.
type volumeMeta struct {
	VolumeOf string `json:"volumeOf"`
}

// volumeID is the store ID of owner's index-th image volume.
func volumeID(owner string, index int) string {
	return fmt.Sprintf("%s-vol%d", owner, index)
}

// CreateImageVolume makes owner's index-th image volume from image (an
// ID, name or repo@digest): a store container of that image, so the
// image stays while the volume exists (RemoveImage refuses it as in use),
// mounted, with subPath resolved inside it without leaving it. The
// volume goes with RemoveContainerRootfs(owner). The image must be
// present (kubelet pulls it first); a sub path the image does not have
// is Invalid.
func (s *Store) CreateImageVolume(ctx context.Context, owner string, index int, image, subPath string) (*ImageVolume, error) {
	if err := checkContainerID(owner); err != nil {
		return nil, err
	}
	if err := checkSubPath(subPath); err != nil {
		return nil, err
	}
	simg, n, err := s.lookup(image)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, errdefs.NotFoundf("image volume: image %q not found: pull it first", image)
		}
		return nil, err
	}
	img, err := s.describe(ctx, simg)
	if err != nil {
		return nil, err
	}
	meta, err := json.Marshal(volumeMeta{VolumeOf: owner})
	if err != nil {
		return nil, err
	}
	id := volumeID(owner, index)
	s.rootfsMu.Lock()
	_, err = s.store.CreateContainer(id, nil, simg.ID, "", string(meta), &cstorage.ContainerOptions{})
	s.rootfsMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("image volume %d of container %s from image %s: %w", index, owner, img.ID, err)
	}
	root, err := s.MountContainerRootfs(id)
	if err != nil {
		return nil, errors.Join(err, s.removeOne(id))
	}
	path := root
	if subPath != "" && subPath != "." {
		// The image is untrusted: its symlinks resolve inside it.
		path, err = securejoin.SecureJoin(root, subPath)
		if err == nil {
			_, err = os.Lstat(path)
		}
		if err != nil {
			return nil, errors.Join(errdefs.Invalidf("image volume: sub path %q of image %s: %v", subPath, image, err), s.removeOne(id))
		}
	}
	return &ImageVolume{Path: path, ImageID: img.ID, ImageRef: imageRef(img, n)}, nil
}

// volumesOf lists the store IDs of owner's image volumes.
func (s *Store) volumesOf(owner string) ([]string, error) {
	ctrs, err := s.store.Containers()
	if err != nil {
		return nil, fmt.Errorf("list image volumes: %w", err)
	}
	var ids []string
	for _, c := range ctrs {
		if volumeOwner(&c) == owner {
			ids = append(ids, c.ID)
		}
	}
	return ids, nil
}

// volumeOwner is the CRI container a store container is an image volume
// of, "" for a container's own root filesystem.
func volumeOwner(c *cstorage.Container) string {
	if !strings.Contains(c.Metadata, "volumeOf") {
		return ""
	}
	var m volumeMeta
	if json.Unmarshal([]byte(c.Metadata), &m) != nil {
		return ""
	}
	return m.VolumeOf
}

// checkSubPath refuses a sub path that is absolute or climbs: it names a
// place inside the image, as kubelet's subPath does.
func checkSubPath(p string) error {
	if filepath.IsAbs(p) {
		return errdefs.Invalidf("image volume: sub path %q is absolute; it must be relative to the image's root", p)
	}
	for _, elem := range strings.Split(p, "/") {
		if elem == ".." {
			return errdefs.Invalidf("image volume: sub path %q leaves the image ('..')", p)
		}
	}
	return nil
}
