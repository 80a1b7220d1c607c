package server

import (
	"context"
	"encoding/json"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/sandbox"
)

// PodSandboxStatus reports one pod; verbose adds the infra pid, namespace
// paths, files and the CNI result under info["info"], as crictl reads it.
func (s *Server) PodSandboxStatus(ctx context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	sb, err := s.pod.get(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.PodSandboxStatusResponse{Status: podStatus(sb)}
	if req.GetVerbose() {
		info, err := json.Marshal(verboseInfo(sb))
		if err != nil {
			return nil, err
		}
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

// ListPodSandbox lists pods, filtered by id (full or prefix), state and
// labels (all must match).
func (s *Server) ListPodSandbox(ctx context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	f := req.GetFilter()
	resp := &runtimeapi.ListPodSandboxResponse{}
	for _, sb := range s.pod.mgr.List() {
		if f.GetId() != "" && !strings.HasPrefix(sb.ID, f.GetId()) {
			continue
		}
		if f.GetState() != nil && f.GetState().GetState() != podState(sb) {
			continue
		}
		if !labelsMatch(sb.Config.GetLabels(), f.GetLabelSelector()) {
			continue
		}
		resp.Items = append(resp.Items, &runtimeapi.PodSandbox{
			Id:             sb.ID,
			Metadata:       podMetadata(sb),
			State:          podState(sb),
			CreatedAt:      sb.CreatedAt.UnixNano(),
			Labels:         sb.Config.GetLabels(),
			Annotations:    sb.Config.GetAnnotations(),
			RuntimeHandler: sb.RuntimeHandler,
		})
	}
	return resp, nil
}

func labelsMatch(labels, selector map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func podState(sb *sandbox.Sandbox) runtimeapi.PodSandboxState {
	if sb.State == sandbox.StateReady {
		return runtimeapi.PodSandboxState_SANDBOX_READY
	}
	return runtimeapi.PodSandboxState_SANDBOX_NOTREADY
}

func podMetadata(sb *sandbox.Sandbox) *runtimeapi.PodSandboxMetadata {
	return &runtimeapi.PodSandboxMetadata{
		Name:      sb.Metadata.Name,
		Namespace: sb.Metadata.Namespace,
		Uid:       sb.Metadata.UID,
		Attempt:   sb.Metadata.Attempt,
	}
}

func podStatus(sb *sandbox.Sandbox) *runtimeapi.PodSandboxStatus {
	st := &runtimeapi.PodSandboxStatus{
		Id:             sb.ID,
		Metadata:       podMetadata(sb),
		State:          podState(sb),
		CreatedAt:      sb.CreatedAt.UnixNano(),
		Network:        &runtimeapi.PodSandboxNetworkStatus{},
		Linux:          &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{Options: sb.NamespaceOptions()}},
		Labels:         sb.Config.GetLabels(),
		Annotations:    sb.Config.GetAnnotations(),
		RuntimeHandler: sb.RuntimeHandler,
	}
	if len(sb.IPs) > 0 {
		st.Network.Ip = sb.IPs[0]
		for _, ip := range sb.IPs[1:] {
			st.Network.AdditionalIps = append(st.Network.AdditionalIps, &runtimeapi.PodIP{Ip: ip})
		}
	}
	return st
}

// podInfo is the verbose status, for people and crictl inspectp.
type podInfo struct {
	State          sandbox.State     `json:"state"`
	InfraPID       int               `json:"infraPid,omitempty"`
	Namespaces     map[string]string `json:"namespaces"`
	CgroupParent   string            `json:"cgroupParent"`
	Hostname       string            `json:"hostname"`
	ResolvConfPath string            `json:"resolvConfPath"`
	HostsPath      string            `json:"hostsPath"`
	HostnamePath   string            `json:"hostnamePath"`
	ShmPath        string            `json:"shmPath,omitempty"`
	NetworkName    string            `json:"networkName,omitempty"`
	CNIResult      json.RawMessage   `json:"cniResult,omitempty"`
	Dir            string            `json:"dir"`
	RunDir         string            `json:"runDir"`
}

func verboseInfo(sb *sandbox.Sandbox) podInfo {
	ns := map[string]string{}
	for k, v := range map[string]string{"network": sb.NetNSPath, "ipc": sb.IPCNSPath, "uts": sb.UTSNSPath, "pid": sb.PIDNSPath} {
		if v != "" {
			ns[k] = v
		}
	}
	return podInfo{
		State:          sb.State,
		InfraPID:       sb.InfraPID,
		Namespaces:     ns,
		CgroupParent:   sb.CgroupParent,
		Hostname:       sb.Hostname,
		ResolvConfPath: sb.ResolvConfPath,
		HostsPath:      sb.HostsPath,
		HostnamePath:   sb.HostnamePath,
		ShmPath:        sb.ShmPath,
		NetworkName:    sb.NetworkName,
		CNIResult:      sb.NetworkResult,
		Dir:            sb.Dir,
		RunDir:         sb.RunDir,
	}
}
