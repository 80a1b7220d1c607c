package server

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/errdefs"
	"github.com/berth-cri/berth/sandbox"
)

// UpdatePodSandboxResources applies the pod's resources plus its overhead
// to the pod's cgroup (kubelet's in-place pod resize).
func (s *Server) UpdatePodSandboxResources(ctx context.Context, req *runtimeapi.UpdatePodSandboxResourcesRequest) (*runtimeapi.UpdatePodSandboxResourcesResponse, error) {
	if req.GetPodSandboxId() == "" {
		return nil, errdefs.Invalidf("pod_sandbox_id is empty")
	}
	if req.GetResources() == nil && req.GetOverhead() == nil {
		return nil, errdefs.Invalidf("neither resources nor overhead given")
	}
	for what, r := range map[string]*runtimeapi.LinuxContainerResources{"resources": req.GetResources(), "overhead": req.GetOverhead()} {
		if r.GetCpuShares() < 0 || r.GetCpuQuota() < -1 || r.GetCpuPeriod() < 0 || r.GetMemoryLimitInBytes() < 0 {
			return nil, errdefs.Invalidf("%s: negative cpu shares, quota, period or memory limit", what)
		}
	}
	if err := s.pod.mgr.UpdateResources(req.GetPodSandboxId(), podResources(req.GetResources()), podResources(req.GetOverhead())); err != nil {
		return nil, err
	}
	return &runtimeapi.UpdatePodSandboxResourcesResponse{}, nil
}

func podResources(r *runtimeapi.LinuxContainerResources) sandbox.Resources {
	return sandbox.Resources{
		CPUShares:   uint64(max(r.GetCpuShares(), 0)),
		CPUQuota:    r.GetCpuQuota(),
		CPUPeriod:   uint64(max(r.GetCpuPeriod(), 0)),
		MemoryLimit: r.GetMemoryLimitInBytes(),
		CpusetCPUs:  r.GetCpusetCpus(),
		CpusetMems:  r.GetCpusetMems(),
	}
}
