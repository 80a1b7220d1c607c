package server

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/oci"
)

// CheckpointContainer writes a checkpoint archive of a running container
// to the requested location and leaves the container running (kubelet's
// checkpoint API). The timeout, in seconds, bounds the whole checkpoint;
// 0 is none.
func (s *Server) CheckpointContainer(ctx context.Context, req *runtimeapi.CheckpointContainerRequest) (*runtimeapi.CheckpointContainerResponse, error) {
	c, err := s.ctr.get(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if t := requestTimeout(req.GetTimeout()); t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t)
		defer cancel()
	}
	err = s.ctr.mgr.Checkpoint(ctx, c, oci.CheckpointOptions{
		Location: req.GetLocation(),
		CriuPath: s.Config().Runtime.CriuPath,
	})
	if err != nil {
		return nil, err
	}
	return &runtimeapi.CheckpointContainerResponse{}, nil
}
