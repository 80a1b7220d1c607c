package oci

import (
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// imageVolumeMount binds an image volume (KEP-4639) that the image store
// has made ready. Image volumes are read-only by definition, so a request
// that asks for a writable one is refused rather than quietly changed;
// they keep exec (an image's binaries may be run from them) and get no
// propagation from the host.
func imageVolumeMount(o *SpecOptions, dst string, m *runtimeapi.Mount) (rspec.Mount, Mount, error) {
	if !m.GetReadonly() {
		return rspec.Mount{}, Mount{}, invalidf("mount %s: an image volume must be readonly", dst)
	}
	if m.GetHostPath() != "" {
		return rspec.Mount{}, Mount{}, invalidf("mount %s: host_path and image are mutually exclusive", dst)
	}
	v, ok := o.ImageVolumes[dst]
	if !ok {
		return rspec.Mount{}, Mount{}, invalidf("mount %s: image volume %q was not prepared", dst, m.GetImage().GetImage())
	}
	sm := bindMount(v.HostPath, dst, true, "rprivate", "nosuid", "nodev")
	applied := Mount{
		ContainerPath: dst,
		HostPath:      v.HostPath,
		Readonly:      true,
		Image:         v.Image,
		ImageRef:      v.ImageRef,
	}
	return sm, applied, nil
}
