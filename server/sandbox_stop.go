package server

import (
	"context"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/errdefs"
)

// StopPodSandbox stops every container of the pod, then its infra, then
// tears down its network and namespaces. Stopping an unknown or stopped
// pod succeeds, as kubelet expects.
func (s *Server) StopPodSandbox(ctx context.Context, req *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	sb, err := s.pod.get(req.GetPodSandboxId())
	if errdefs.IsNotFound(err) {
		return &runtimeapi.StopPodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.ctr.stopPodContainers(ctx, sb.ID); err != nil {
		return nil, fmt.Errorf("stop the pod's containers: %w", err)
	}
	if sb.Infra {
		if err := s.stopInfra(ctx, sb); err != nil {
			return nil, fmt.Errorf("stop the pod's infra: %w", err)
		}
	}
	if err := s.pod.mgr.Stop(ctx, sb.ID); err != nil {
		return nil, err
	}
	return &runtimeapi.StopPodSandboxResponse{}, nil
}

// RemovePodSandbox removes every container of the pod and then the pod:
// network, namespaces, cgroup, files, record. Removing an unknown pod
// succeeds.
func (s *Server) RemovePodSandbox(ctx context.Context, req *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	sb, err := s.pod.get(req.GetPodSandboxId())
	if errdefs.IsNotFound(err) {
		return &runtimeapi.RemovePodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.ctr.removePodContainers(ctx, sb.ID); err != nil {
		return nil, fmt.Errorf("remove the pod's containers: %w", err)
	}
	if sb.Infra {
		if err := s.stopInfra(ctx, sb); err != nil {
			return nil, fmt.Errorf("stop the pod's infra: %w", err)
		}
	}
	if err := s.pod.mgr.Remove(ctx, sb.ID); err != nil {
		return nil, err
	}
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}
