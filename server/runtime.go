package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/cgroupdriver"
	"github.com/berth-cri/berth/errdefs"
)

const (
	runtimeName       = "berth"
	criAPIVersion     = "v1"
	kubeletAPIVersion = "0.1.0" // the field kubelet reads as the CRI's version
)

// Version answers the runtime's name and version.
func (s *Server) Version(ctx context.Context, req *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{
		Version:           kubeletAPIVersion,
		RuntimeName:       runtimeName,
		RuntimeVersion:    s.opts.Version,
		RuntimeApiVersion: criAPIVersion,
	}, nil
}

// Status reports the runtime and network conditions kubelet gates pods on.
func (s *Server) Status(ctx context.Context, req *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	netInfo := s.pod.networkInfo()
	network := &runtimeapi.RuntimeCondition{Type: runtimeapi.NetworkReady, Status: true}
	switch {
	case netInfo.Error != "":
		network.Status = false
		network.Reason = "NetworkPluginNotReady"
		network.Message = netInfo.Error
	case netInfo.Fallback:
		// Ready, but a person reading `berthctl info` should see why.
		network.Message = fmt.Sprintf("no CNI network config in %s: using the fallback %s (network.fallback_config)",
			netInfo.ConfDir, netInfo.File)
	}
	resp := &runtimeapi.StatusResponse{
		Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
			{Type: runtimeapi.RuntimeReady, Status: true},
			network,
		}},
		RuntimeHandlers: s.runtimeHandlers(ctx),
		Features:        runtimeFeatures(),
	}
	if req.GetVerbose() {
		m, err := s.Config().Map()
		if err != nil {
			return nil, err
		}
		cfg, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		net, err := json.Marshal(netInfo)
		if err != nil {
			return nil, err
		}
		cg, err := json.Marshal(s.cgroups)
		if err != nil {
			return nil, err
		}
		resp.Info = map[string]string{"config": string(cfg), "network": string(net), "cgroup": string(cg)}
	}
	return resp, nil
}

func (s *Server) runtimeHandlers(ctx context.Context) []*runtimeapi.RuntimeHandler {
	cfg := s.Config()
	var out []*runtimeapi.RuntimeHandler
	for name := range cfg.Runtime.Handlers {
		f := s.handlerFeatures(ctx, name)
		out = append(out, &runtimeapi.RuntimeHandler{
			Name:     name,
			Features: criHandlerFeatures(f),
		})
		if name == cfg.Runtime.Default {
			// The default handler is also reported under the empty name,
			// as kubelet looks it up that way.
			out = append(out, &runtimeapi.RuntimeHandler{Features: criHandlerFeatures(f)})
		}
	}
	return out
}

// RuntimeConfig tells kubelet which cgroup driver to use: the one berthd
// chose at start (kubelet 1.28+ follows it, KubeletCgroupDriverFromCRI).
func (s *Server) RuntimeConfig(ctx context.Context, req *runtimeapi.RuntimeConfigRequest) (*runtimeapi.RuntimeConfigResponse, error) {
	driver := runtimeapi.CgroupDriver_CGROUPFS
	if s.cgroups.Driver == cgroupdriver.Systemd {
		driver = runtimeapi.CgroupDriver_SYSTEMD
	}
	return &runtimeapi.RuntimeConfigResponse{
		Linux: &runtimeapi.LinuxRuntimeConfiguration{CgroupDriver: driver},
	}, nil
}

// UpdateRuntimeConfig keeps the pod CIDR for the network code (CNI ipRanges).
func (s *Server) UpdateRuntimeConfig(ctx context.Context, req *runtimeapi.UpdateRuntimeConfigRequest) (*runtimeapi.UpdateRuntimeConfigResponse, error) {
	if cidr := req.GetRuntimeConfig().GetNetworkConfig().GetPodCidr(); cidr != "" {
		// Dual-stack clusters send "v4cidr,v6cidr".
		for _, c := range strings.Split(cidr, ",") {
			if _, _, err := net.ParseCIDR(strings.TrimSpace(c)); err != nil {
				return nil, errdefs.Invalidf("pod CIDR %q: %v", cidr, err)
			}
		}
		s.podCIDRMu.Lock()
		s.podCIDR = cidr
		s.podCIDRMu.Unlock()
	}
	return &runtimeapi.UpdateRuntimeConfigResponse{}, nil
}
