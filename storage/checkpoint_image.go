package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"go.podman.io/image/v5/types"
	cstorage "go.podman.io/storage"
	"go.podman.io/storage/pkg/archive"

	"github.com/berth-cri/berth/errdefs"
)

// CheckpointAnnotation marks an image made of a checkpoint archive: its
// one layer holds the archive's files (CRIU's images, config.dump,
// spec.dump, ...) and the annotation's value names the checkpointed
// container. The name is CRI-O's and Podman's (`buildah config
// --annotation` puts it in the OCI manifest), so an image built for
// either restores here.
const CheckpointAnnotation = "io.kubernetes.cri-o.annotations.checkpoint.name"

// manifestAnnotations reads the annotations of img's manifest. A Docker
// schema 2 manifest has no such field and yields none.
func manifestAnnotations(ctx context.Context, img types.Image) (map[string]string, error) {
	blob, _, err := img.Manifest(ctx)
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	var m struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(blob, &m); err != nil {
		return nil, fmt.Errorf("parse manifest: %w", err)
	}
	return m.Annotations, nil
}

// CheckpointImage says whether ref names a checkpoint image (see
// CheckpointAnnotation) and, if it does, returns how to open its
// contents as an uncompressed tar stream, the way a checkpoint archive is
// read. open is nil, with no error, when ref names no image in the store
// or an image that is not a checkpoint: the caller then treats it as an
// ordinary image. The stream is the layer as it was pulled (the store
// reassembles it from its tar-split data), so it is as untrusted as the
// registry it came from: the caller checks every entry.
func (s *Store) CheckpointImage(ctx context.Context, ref string) (open func() (io.ReadCloser, error), err error) {
	simg, _, err := s.lookup(ref)
	if errdefs.IsNotFound(err) || errdefs.IsInvalid(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	// Whether it is pinned does not matter here: skip that lookup.
	img, err := s.describeWith(ctx, simg, nil)
	if err != nil {
		return nil, err
	}
	if _, marked := img.Annotations[CheckpointAnnotation]; !marked {
		return nil, nil
	}
	if simg.TopLayer == "" {
		return nil, errdefs.Invalidf("checkpoint image %s has no layer", ref)
	}
	layer, err := s.store.Layer(simg.TopLayer)
	if err != nil {
		return nil, fmt.Errorf("checkpoint image %s: its layer: %w", ref, err)
	}
	if layer.Parent != "" {
		return nil, errdefs.Invalidf("checkpoint image %s has more than one layer: a checkpoint image holds one, the archive's files", ref)
	}
	return func() (io.ReadCloser, error) {
		uncompressed := archive.Uncompressed
		rc, err := s.store.Diff("", layer.ID, &cstorage.DiffOptions{Compression: &uncompressed})
		if err != nil {
			return nil, fmt.Errorf("checkpoint image %s: read its layer: %w", ref, err)
		}
		return rc, nil
	}, nil
}
