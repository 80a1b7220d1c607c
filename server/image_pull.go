package server

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/errdefs"
	"github.com/berth-cri/berth/storage"
)

// PullImage pulls req.Image and answers its image ID ("sha256:..."),
// which kubelet then uses as the image's reference. The pull follows the
// caller's context; without a deadline image.pull_timeout bounds it.
func (s *Server) PullImage(ctx context.Context, req *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	if req.GetImage().GetImage() == "" {
		return nil, errdefs.Invalidf("image.image is required")
	}
	img, err := s.img.store.Pull(ctx, req.GetImage().GetImage(), authFromCRI(req.GetAuth()))
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PullImageResponse{ImageRef: img.ID}, nil
}

// authFromCRI maps the CRI credentials, with the registry they are for.
func authFromCRI(a *runtimeapi.AuthConfig) storage.Auth {
	if a == nil {
		return storage.Auth{}
	}
	return storage.Auth{
		Username:      a.GetUsername(),
		Password:      a.GetPassword(),
		Auth:          a.GetAuth(),
		IdentityToken: a.GetIdentityToken(),
		RegistryToken: a.GetRegistryToken(),
		ServerAddress: a.GetServerAddress(),
	}
}
