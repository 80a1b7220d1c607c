package oci

import (
	"context"
	"fmt"
	"path"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/errdefs"
	"github.com/berth-cri/berth/steptrace"
)

// Rootfs is the store of container root filesystems (package storage,
// which server hands over in these terms). The Manager creates, mounts
// and removes each container's, and at start removes those no container
// owns.
type Rootfs interface {
	// CreateRootfs makes container id's writable layer on image (an ID,
	// name or repo@digest), under name, which is unique in the store;
	// through idmapped layers with userNS's mappings if it is not nil.
	// Nothing is mounted yet.
	CreateRootfs(ctx context.Context, id, name, image string, userNS *UserNS) (*RootfsImage, error)
	// MountContainerRootfs mounts it and returns its path.
	MountContainerRootfs(id string) (string, error)
	// CreateImageVolume makes container id's index-th image mount ready:
	// image's root, or subPath inside it, on the host, removed with the
	// container's root filesystem.
	CreateImageVolume(ctx context.Context, id string, index int, image, subPath string) (ImageVolume, error)
	// RemoveContainerRootfs unmounts and removes it and its image
	// volumes; an unknown id is no error.
	RemoveContainerRootfs(id string) error
	// ListContainerRootfs lists the ids of every root filesystem.
	ListContainerRootfs() ([]string, error)
}

// RootfsImage is the image a root filesystem was made from.
type RootfsImage struct {
	Config ImageConfig
	// Name is a name of the image, reported when the request gave no
	// user_specified_image.
	Name string
	// Ref and ID are the resolved image (digest reference, id).
	Ref string
	ID  string
}

// makeRootfs creates and mounts the root filesystem of the container
// o.ID and its image volumes, filling o's Rootfs, Image, ImageName and
// ImageVolumes. The caller's teardown removes whatever of it exists.
func (m *Manager) makeRootfs(ctx context.Context, o *SpecOptions) (*RootfsImage, error) {
	if m.opts.Rootfs == nil {
		return nil, fmt.Errorf("create container %s: no root filesystem store", o.ID)
	}
	cfg := o.Config
	endLayer := steptrace.Begin(ctx, "rootfs layer")
	img, err := m.opts.Rootfs.CreateRootfs(ctx, o.ID, storeName(o.Pod, cfg.GetMetadata()), cfg.GetImage().GetImage(), o.Pod.UserNS)
	endLayer()
	if err != nil {
		return nil, err
	}
	endMount := steptrace.Begin(ctx, "rootfs mount")
	o.Rootfs, err = m.opts.Rootfs.MountContainerRootfs(o.ID)
	endMount()
	if err != nil {
		return nil, err
	}
	o.Image = img.Config
	o.ImageName = img.Name
	if u := cfg.GetImage().GetUserSpecifiedImage(); u != "" {
		// The name the user wrote, which kubelet sends while it names
		// the image by ID.
		o.ImageName = u
	}
	o.ImageVolumes, err = m.imageVolumes(ctx, o.ID, cfg.GetMounts())
	return img, err
}

// imageVolumes makes the request's image mounts (Mount.image, KEP-4639)
// ready, keyed by clean container path as the spec generator looks them
// up. The mount's image_ref is the image ID, what PullImage answered as
// image_ref and kubelet put in the request (KEP-5365).
func (m *Manager) imageVolumes(ctx context.Context, id string, mounts []*runtimeapi.Mount) (map[string]ImageVolume, error) {
	var out map[string]ImageVolume
	for i, mnt := range mounts {
		if mnt.GetImage() == nil {
			continue
		}
		if mnt.GetImage().GetImage() == "" {
			return nil, errdefs.Invalidf("mount %s: image.image is empty", mnt.GetContainerPath())
		}
		if !mnt.GetReadonly() {
			return nil, errdefs.Invalidf("mount %s: an image volume must be readonly", mnt.GetContainerPath())
		}
		v, err := m.opts.Rootfs.CreateImageVolume(ctx, id, i, mnt.GetImage().GetImage(), mnt.GetImageSubPath())
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = map[string]ImageVolume{}
		}
		v.Image = mnt.GetImage().GetImage()
		out[path.Clean(mnt.GetContainerPath())] = v
	}
	return out, nil
}

// storeName is the container's unique name in the image store, the one
// kubelet's tools know from CRI-O: k8s_<name>_<pod>_<ns>_<uid>_<attempt>.
func storeName(pod *Pod, md *runtimeapi.ContainerMetadata) string {
	return fmt.Sprintf("k8s_%s_%s_%s_%s_%d", md.GetName(), pod.Name, pod.Namespace, pod.UID, md.GetAttempt())
}

// sweepRootfs removes the root filesystems no container owns: what a
// crash left between a create's first step and its record, or a
// removal's last.
func (m *Manager) sweepRootfs() error {
	if m.opts.Rootfs == nil {
		return nil
	}
	ids, err := m.opts.Rootfs.ListContainerRootfs()
	if err != nil {
		return err
	}
	for _, id := range ids {
		if m.Known(id) {
			continue
		}
		logFor(id).Info("removing a root filesystem no container owns")
		if err := m.opts.Rootfs.RemoveContainerRootfs(id); err != nil {
			logFor(id).Errorf("remove root filesystem: %v", err)
		}
	}
	return nil
}
