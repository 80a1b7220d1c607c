package server

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/sandbox"
)

// RunPodSandbox creates and starts a pod sandbox. The sandbox package
// validates the config in depth, decides whether the pod needs an infra
// process, waits for an in-flight call with the same name (a kubelet
// retry) and leaves nothing behind when it fails.
func (s *Server) RunPodSandbox(ctx context.Context, req *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error) {
	if err := checkPodMetadataLimits(req.GetConfig().GetMetadata()); err != nil {
		return nil, err
	}
	handler, h, err := s.Config().Runtime.Handler(req.GetRuntimeHandler())
	if err != nil {
		return nil, err
	}
	if err := s.checkPodFeatures(ctx, handler, req.GetConfig()); err != nil {
		return nil, err
	}
	defer s.blockPluginSync()()

	sb, err := s.pod.mgr.Create(ctx, sandbox.CreateRequest{
		Config:         req.GetConfig(),
		RuntimeHandler: handler,
		VM:             h.Type == "vm",
		PodCIDR:        s.PodCIDR(),
	})
	if err != nil {
		return nil, err
	}
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: sb.ID}, nil
}
