package storage

import (
	"context"
	"errors"
	"fmt"
	"golang.org/x/sys/unix"
	"regexp"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sirupsen/logrus"
	"go.podman.io/image/v5/docker/reference"
	cstorage "go.podman.io/storage"

	"github.com/berth-cri/berth/errdefs"
)

// ContainerRootfs is a container's root filesystem in the store: a
// writable layer on top of its image.
type ContainerRootfs struct {
	// ID is the container's ID (the CRI container ID).
	ID string
	// ImageID is the image's ID, "sha256:<hex>".
	ImageID string
	// ImageRef is what ContainerStatus.ImageRef reports: a repo@digest
	// reference of the image (the one in the repository the request
	// named, when there is one), else the image ID.
	ImageRef string
	// ImageName is the image as a person names it: the reference the
	// request gave when it was a name, else the image's first tag (as
	// containerd reports it), else its ID.
	ImageName string
	// Config is the image's runtime config: Entrypoint, Cmd, Env, User,
	// WorkingDir, StopSignal, Volumes, Labels.
	Config ocispec.ImageConfig
}

// containerID is what may become a directory name in the store.
var containerID = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)

func checkContainerID(id string) error {
	if !containerID.MatchString(id) {
		return errdefs.Invalidf("container id %q: want letters, digits, '_', '.', '-' (at most 128, starting alphanumeric)", id)
	}
	return nil
}

// CreateContainerRootfs creates the root filesystem of container id from
// image (an ID, name or repo@digest, as CRI ContainerConfig.Image.Image
// gives it). name, if not empty, must be unique in the store (a CRI
// container's full name is). The image must be present: NotFound
// otherwise. An existing id or name is AlreadyExists. Nothing is mounted
// yet: see MountContainerRootfs.
func (s *Store) CreateContainerRootfs(ctx context.Context, id, name, image string, opts ...RootfsOption) (*ContainerRootfs, error) {
	if err := checkContainerID(id); err != nil {
		return nil, err
	}
	simg, n, err := s.lookup(image)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, errdefs.NotFoundf("image %q not found: pull it first", image)
		}
		return nil, err
	}
	img, err := s.describe(ctx, simg)
	if err != nil {
		return nil, err
	}
	var names []string
	if name != "" {
		names = []string{name}
	}
	copts := &cstorage.ContainerOptions{}
	for _, o := range opts {
		o(copts)
	}
	s.rootfsMu.Lock()
	_, err = s.store.CreateContainer(id, names, simg.ID, "", "", copts)
	s.rootfsMu.Unlock()
	switch {
	case errors.Is(err, cstorage.ErrDuplicateID):
		return nil, errdefs.AlreadyExistsf("container %s already has a root filesystem", id)
	case errors.Is(err, cstorage.ErrDuplicateName):
		return nil, errdefs.AlreadyExistsf("container name %q is taken in the store", name)
	case err != nil:
		return nil, fmt.Errorf("create root filesystem of container %s from image %s: %w", id, img.ID, err)
	}
	rfs := &ContainerRootfs{ID: id, ImageID: img.ID, ImageRef: imageRef(img, n), ImageName: imageName(img, n)}
	if img.Config != nil {
		rfs.Config = img.Config.Config
	}
	return rfs, nil
}

// imageName picks the name ContainerStatus reports when the client gave
// no user_specified_image.
func imageName(img *Image, asked reference.Named) string {
	if asked != nil {
		return asked.String()
	}
	if len(img.RepoTags) > 0 {
		return img.RepoTags[0]
	}
	return img.ID
}

// imageRef picks the repo digest for ContainerStatus.ImageRef.
func imageRef(img *Image, asked reference.Named) string {
	if asked != nil {
		if c, ok := asked.(reference.Canonical); ok {
			return c.String()
		}
		for _, d := range img.RepoDigests {
			if p, err := reference.ParseNormalizedNamed(d); err == nil && p.Name() == asked.Name() {
				if c, ok := p.(reference.Canonical); ok && c.Digest() == img.Digest {
					return d
				}
			}
		}
	}
	for _, d := range img.RepoDigests {
		if p, err := reference.ParseNormalizedNamed(d); err == nil {
			if c, ok := p.(reference.Canonical); ok && c.Digest() == img.Digest {
				return d
			}
		}
	}
	if len(img.RepoDigests) > 0 {
		return img.RepoDigests[0]
	}
	return img.ID
}

// MountContainerRootfs mounts container id's root filesystem and returns
// its path. It is idempotent: mounting a mounted one returns the same
// path and does not stack a second reference, so one Unmount undoes any
// number of Mounts (containers/storage counts mounts; berthd restarts
// would otherwise leave counts no one can balance).
func (s *Store) MountContainerRootfs(id string) (string, error) {
	if err := checkContainerID(id); err != nil {
		return "", err
	}
	s.rootfsMu.Lock()
	defer s.rootfsMu.Unlock()
	path, err := s.store.Mount(id, "")
	if err != nil {
		if errors.Is(err, cstorage.ErrContainerUnknown) || errors.Is(err, cstorage.ErrLayerUnknown) {
			return "", errdefs.NotFoundf("container %s has no root filesystem", id)
		}
		return "", fmt.Errorf("mount root filesystem of container %s: %w", id, err)
	}
	if n, err := s.store.Mounted(id); err == nil && n > 1 {
		if _, err := s.store.Unmount(id, false); err != nil {
			logrus.Warnf("storage: dropping extra mount reference of %s: %v", id, err)
		}
	}
	return path, nil
}

// UnmountContainerRootfs unmounts container id's root filesystem.
// Unknown or not mounted is not an error.
func (s *Store) UnmountContainerRootfs(id string) error {
	if err := checkContainerID(id); err != nil {
		return err
	}
	s.rootfsMu.Lock()
	defer s.rootfsMu.Unlock()
	_, err := s.store.Unmount(id, true)
	if err == nil || errors.Is(err, cstorage.ErrContainerUnknown) || errors.Is(err, cstorage.ErrLayerUnknown) || errors.Is(err, cstorage.ErrLayerNotMounted) {
		return nil
	}
	return fmt.Errorf("unmount root filesystem of container %s: %w", id, err)
}

// RemoveContainerRootfs unmounts and deletes container id's root
// filesystem, its image volumes and their store records. Unknown is not
// an error.
func (s *Store) RemoveContainerRootfs(id string) error {
	vols, err := s.volumesOf(id)
	if err != nil {
		return err
	}
	for _, v := range vols {
		if err := s.removeOne(v); err != nil {
			return err
		}
	}
	return s.removeOne(id)
}

// removeOne unmounts and deletes one store container.
func (s *Store) removeOne(id string) error {
	if err := s.UnmountContainerRootfs(id); err != nil {
		return err
	}
	// The store removes a layer with os.RemoveAll, which a tree deeper
	// than berthd's descriptors defeats: empty it first.
	if dir, _, err := s.WritableLayer(id); err == nil && dir != "" {
		if err := emptyTree(dir); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("remove root filesystem of container %s: %w", id, err)
		}
	}
	s.rootfsMu.Lock()
	defer s.rootfsMu.Unlock()
	err := s.store.DeleteContainer(id)
	if err == nil || errors.Is(err, cstorage.ErrContainerUnknown) || errors.Is(err, cstorage.ErrNotAContainer) {
		return nil
	}
	return fmt.Errorf("remove root filesystem of container %s: %w", id, err)
}

// ListContainerRootfs lists the IDs of every container root filesystem,
// so berthd can remove those whose container record a crash lost.
func (s *Store) ListContainerRootfs() ([]string, error) {
	ctrs, err := s.store.Containers()
	if err != nil {
		return nil, fmt.Errorf("list container root filesystems: %w", err)
	}
	// An image volume is listed under its owner's ID: removing the
	// owner's root filesystem removes its volumes, even if a crash left
	// the volumes without it.
	seen := map[string]bool{}
	ids := make([]string, 0, len(ctrs))
	for _, c := range ctrs {
		id := c.ID
		if owner := volumeOwner(&c); owner != "" {
			id = owner
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids, nil
}
