package server

import (
	"context"
	"path"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/errdefs"
	"github.com/berth-cri/berth/oci"
)

// imageVolumes makes the image store ready the request's image mounts
// (Mount.image, KEP-4639) for container id, keyed by clean container
// path as the spec generator looks them up. They belong to the
// container's root filesystem: removing it removes them. The mount's
// image_ref is the image ID, what PullImage answered as image_ref and
// kubelet put in the request (KEP-5365).
func (c *containerService) imageVolumes(ctx context.Context, id string, mounts []*runtimeapi.Mount) (map[string]oci.ImageVolume, error) {
	var out map[string]oci.ImageVolume
	for i, m := range mounts {
		if m.GetImage() == nil {
			continue
		}
		if m.GetImage().GetImage() == "" {
			return nil, errdefs.Invalidf("mount %s: image.image is empty", m.GetContainerPath())
		}
		if !m.GetReadonly() {
			return nil, errdefs.Invalidf("mount %s: an image volume must be readonly", m.GetContainerPath())
		}
		v, err := c.rootfs.CreateImageVolume(ctx, id, i, m.GetImage().GetImage(), m.GetImageSubPath())
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = map[string]oci.ImageVolume{}
		}
		out[path.Clean(m.GetContainerPath())] = oci.ImageVolume{HostPath: v.Path, Image: m.GetImage().GetImage(), ImageRef: v.ImageID}
	}
	return out, nil
}
