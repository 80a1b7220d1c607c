package server

import (
	"context"
	"errors"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/sandbox"
)

// RunPodSandbox creates and starts a pod sandbox. The sandbox package
// validates the config in depth, waits for an in-flight call with the same
// name (a kubelet retry) and leaves nothing behind when it fails.
func (s *Server) RunPodSandbox(ctx context.Context, req *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error) {
	if err := checkPodMetadataLimits(req.GetConfig().GetMetadata()); err != nil {
		return nil, err
	}
	handler, h, err := s.Config().Runtime.Handler(req.GetRuntimeHandler())
	if err != nil {
		return nil, err
	}
	// An infra process is needed for a shared PID namespace (it is PID 1
	// and reaps zombies) and always for a VM runtime (the VM is the pod).
	pid := req.GetConfig().GetLinux().GetSecurityContext().GetNamespaceOptions().GetPid()
	infra := pid == runtimeapi.NamespaceMode_POD || h.Type == "vm"

	sb, err := s.pod.mgr.Create(ctx, sandbox.CreateRequest{
		Config:         req.GetConfig(),
		RuntimeHandler: handler,
		Infra:          infra,
		StartInfra: func(ctx context.Context, sb *sandbox.Sandbox) error {
			if err := s.startInfra(ctx, sb); err != nil {
				// Undo whatever it started before failing.
				return errors.Join(err, s.stopInfra(ctx, sb))
			}
			return nil
		},
		PodCIDR: s.PodCIDR(),
	})
	if err != nil {
		return nil, err
	}
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: sb.ID}, nil
}
