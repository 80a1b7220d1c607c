package server

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/errdefs"
)

// RemoveImage removes an image by ID, name or repo@digest, with CRI-O's
// semantics (see storage.Store.RemoveImage): one name of several goes
// alone, an image a container uses stays, an unknown image is success.
func (s *Server) RemoveImage(ctx context.Context, req *runtimeapi.RemoveImageRequest) (*runtimeapi.RemoveImageResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, errdefs.Invalidf("image.image is required")
	}
	if err := s.img.store.RemoveImage(ctx, ref); err != nil {
		return nil, err
	}
	return &runtimeapi.RemoveImageResponse{}, nil
}
