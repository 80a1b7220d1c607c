package server

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/errdefs"
)

// ExecSync runs a command in a running container and returns its output
// and exit code. A timeout (seconds) kills the command when it passes and
// answers DeadlineExceeded, as kubelet's exec probes expect.
func (s *Server) ExecSync(ctx context.Context, req *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	if len(req.GetCmd()) == 0 {
		return nil, errdefs.Invalidf("cmd is empty")
	}
	if req.GetTimeout() < 0 {
		return nil, errdefs.Invalidf("timeout %d is negative", req.GetTimeout())
	}
	c, err := s.ctr.get(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	res, err := s.ctr.mgr.ExecSync(ctx, c, req.GetCmd(), requestTimeout(req.GetTimeout()))
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ExecSyncResponse{Stdout: res.Stdout, Stderr: res.Stderr, ExitCode: res.ExitCode}, nil
}
