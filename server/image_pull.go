package server

import (
	"context"

	"google.golang.org/protobuf/proto"
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

// authFromCRI maps the CRI credentials. ServerAddress needs no mapping:
// kubelet sends the credentials meant for this image's registry.
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
	}
}

// redactSecrets returns req fit for the debug log: a PullImageRequest's
// credentials are replaced, everything else is req itself.
func redactSecrets(req any) any {
	p, ok := req.(*runtimeapi.PullImageRequest)
	if !ok || p.GetAuth() == nil {
		return req
	}
	c := proto.Clone(p).(*runtimeapi.PullImageRequest)
	c.Auth = &runtimeapi.AuthConfig{Username: c.Auth.GetUsername(), ServerAddress: c.Auth.GetServerAddress()}
	if p.Auth.GetPassword() != "" || p.Auth.GetAuth() != "" || p.Auth.GetIdentityToken() != "" || p.Auth.GetRegistryToken() != "" {
		c.Auth.Password = "<redacted>"
	}
	return c
}
