package testimage

import (
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// DefaultPath is the PATH every image's Env starts with.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Spec chooses an image's config and its top layer.
type Spec struct {
	// Name goes into /etc/berth-image; images with different names have
	// different top layers, hence different IDs and digests.
	Name       string
	Entrypoint []string
	Cmd        []string
	// Env is added after PATH (an entry starting with "PATH=" replaces it).
	Env        []string
	User       string
	WorkingDir string
	StopSignal string
	Labels     map[string]string
	// Volumes are the config's declared volumes (paths).
	Volumes []string
	// Files are added to the top layer.
	Files []File
	// Arch is the config's architecture; amd64 when empty.
	Arch string
	// Docker builds a Docker schema 2 image instead of an OCI one.
	Docker bool
}

// Busybox builds a three-layer image: busybox, users, then the Spec's
// own layer, with the Spec's config.
func Busybox(s Spec) (v1.Image, error) {
	arch := s.Arch
	if arch == "" {
		arch = "amd64"
	}
	base, err := busyboxLayer()
	if err != nil {
		return nil, err
	}
	users, err := usersLayer()
	if err != nil {
		return nil, err
	}
	top, err := specLayer(s, arch)
	if err != nil {
		return nil, err
	}
	img := empty.Image
	if s.Docker {
		img = mutate.MediaType(img, types.DockerManifestSchema2)
		img = mutate.ConfigMediaType(img, types.DockerConfigJSON)
	} else {
		img = mutate.MediaType(img, types.OCIManifestSchema1)
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	}
	layerType := types.OCILayer
	if s.Docker {
		layerType = types.DockerLayer
	}
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, MediaType: layerType, History: v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "ADD busybox /bin/busybox", Comment: "testimage"}},
		mutate.Addendum{Layer: users, MediaType: layerType, History: v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "ADD passwd group /etc/"}},
		mutate.Addendum{Layer: top, MediaType: layerType, History: v1.History{Created: v1.Time{Time: epoch}, CreatedBy: fmt.Sprintf("ADD files of %q", s.Name)}},
	)
	if err != nil {
		return nil, fmt.Errorf("append layers: %w", err)
	}
	return configure(img, s, arch)
}

// configure sets the runtime config and platform of img.
func configure(img v1.Image, s Spec, arch string) (v1.Image, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = arch
	if arch == "arm64" {
		cf.Variant = "v8"
	}
	cf.Created = v1.Time{Time: epoch}
	env := []string{DefaultPath}
	for _, e := range s.Env {
		if strings.HasPrefix(e, "PATH=") {
			env[0] = e
			continue
		}
		env = append(env, e)
	}
	cf.Config = v1.Config{
		Entrypoint: s.Entrypoint,
		Cmd:        s.Cmd,
		Env:        env,
		User:       s.User,
		WorkingDir: s.WorkingDir,
		StopSignal: s.StopSignal,
		Labels:     s.Labels,
	}
	if len(s.Volumes) > 0 {
		cf.Config.Volumes = map[string]struct{}{}
		for _, v := range s.Volumes {
			cf.Config.Volumes[v] = struct{}{}
		}
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("set config: %w", err)
	}
	return img, nil
}

// MultiArch builds an OCI index with a linux/amd64 and a linux/arm64/v8
// image of the Spec. Both carry the host's (amd64) busybox: only their
// config and /etc/berth-image say arm64, which is all a pull looks at.
// It returns the index and the amd64 and arm64 images.
func MultiArch(s Spec) (idx v1.ImageIndex, amd64, arm64 v1.Image, err error) {
	s.Arch = "amd64"
	if amd64, err = Busybox(s); err != nil {
		return nil, nil, nil, err
	}
	s.Arch = "arm64"
	if arm64, err = Busybox(s); err != nil {
		return nil, nil, nil, err
	}
	base := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	if s.Docker {
		base = mutate.IndexMediaType(empty.Index, types.DockerManifestList)
	}
	// arm64 first, so a client that just takes the first entry gets the
	// wrong one and a test notices.
	idx = mutate.AppendManifests(base,
		mutate.IndexAddendum{Add: arm64, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
		mutate.IndexAddendum{Add: amd64, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
	)
	return idx, amd64, arm64, nil
}

// ConfigDigest is the image's config digest: the image ID a CRI runtime
// reports ("sha256:...").
func ConfigDigest(img v1.Image) (string, error) {
	h, err := img.ConfigName()
	if err != nil {
		return "", err
	}
	return h.String(), nil
}

// LayerDigests are the image's compressed layer digests, as fetched from
// a registry (for Registry.BlobGets).
func LayerDigests(img v1.Image) ([]string, error) {
	ls, err := img.Layers()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range ls {
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		out = append(out, d.String())
	}
	return out, nil
}
