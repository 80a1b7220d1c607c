package nrihost

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/containerd/nri/pkg/api"
	"github.com/sirupsen/logrus"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/oci"
	"github.com/berth-cri/berth/sandbox"
)

// RunPodSandbox tells plugins of a pod about to be ready. If one fails,
// the plugins that saw the pod are told it is gone.
func (h *Host) RunPodSandbox(ctx context.Context, sb *sandbox.Sandbox) error {
	if !h.started.Load() {
		return nil
	}
	pod := h.podSandbox(sb)
	if err := h.nri.RunPodSandbox(ctx, &api.RunPodSandboxRequest{Pod: pod}); err != nil {
		h.RemovePodSandbox(context.WithoutCancel(ctx), sb)
		return fmt.Errorf("NRI: RunPodSandbox of pod %s: %w", sb.ID, err)
	}
	return nil
}

// StopPodSandbox tells plugins of a ready pod being stopped.
func (h *Host) StopPodSandbox(ctx context.Context, sb *sandbox.Sandbox) error {
	if !h.started.Load() {
		return nil
	}
	if err := h.nri.StopPodSandbox(ctx, &api.StopPodSandboxRequest{Pod: h.podSandbox(sb)}); err != nil {
		return fmt.Errorf("NRI: StopPodSandbox of pod %s: %w", sb.ID, err)
	}
	return nil
}

// RemovePodSandbox tells plugins a pod is gone. Nothing is left to
// refuse, so an error is only logged.
func (h *Host) RemovePodSandbox(ctx context.Context, sb *sandbox.Sandbox) {
	if !h.started.Load() {
		return
	}
	if err := h.nri.RemovePodSandbox(ctx, &api.RemovePodSandboxRequest{Pod: h.podSandbox(sb)}); err != nil {
		logrus.WithField("pod_sandbox_id", sb.ID).Warnf("NRI: RemovePodSandbox: %v", err)
	}
}

// pod returns the NRI view of the pod with id, or a pod with the id
// alone if it is gone (a container outliving its pod's record).
func (h *Host) pod(id string) *api.PodSandbox {
	sb, err := h.pods.Get(id)
	if err != nil {
		return &api.PodSandbox{Id: id}
	}
	return h.podSandbox(sb)
}

// podSandbox converts a pod to NRI's PodSandbox.
func (h *Host) podSandbox(sb *sandbox.Sandbox) *api.PodSandbox {
	cfg := sb.Config
	return &api.PodSandbox{
		Id:             sb.ID,
		Name:           sb.Metadata.Name,
		Uid:            sb.Metadata.UID,
		Namespace:      sb.Metadata.Namespace,
		Labels:         maps.Clone(cfg.GetLabels()),
		Annotations:    maps.Clone(cfg.GetAnnotations()),
		RuntimeHandler: sb.RuntimeHandler,
		Pid:            uint32(sb.InfraPID),
		Ips:            slices.Clone(sb.IPs),
		Linux: &api.LinuxPodSandbox{
			// Berth's pod cgroup is the request's cgroup parent (or one
			// made below runtime.cgroup_parent); containers go below it.
			CgroupParent: sb.CgroupParent,
			CgroupsPath:  sb.CgroupParent,
			Namespaces:   podNamespaces(sb),
			PodOverhead:  h.criResources(cfg.GetLinux().GetOverhead()),
			PodResources: h.criResources(cfg.GetLinux().GetResources()),
		},
	}
}

func podNamespaces(sb *sandbox.Sandbox) []*api.LinuxNamespace {
	var out []*api.LinuxNamespace
	for _, ns := range []struct{ typ, path string }{
		{"network", sb.NetNSPath}, {"ipc", sb.IPCNSPath}, {"uts", sb.UTSNSPath}, {"pid", sb.PIDNSPath},
	} {
		if ns.path != "" {
			out = append(out, &api.LinuxNamespace{Type: ns.typ, Path: ns.path})
		}
	}
	return out
}

// criResources converts a pod's CRI resources with the conversion
// containers get; nil when there are none or they do not fit this node.
func (h *Host) criResources(r *runtimeapi.LinuxContainerResources) *api.LinuxResources {
	if r == nil {
		return nil
	}
	lr, err := oci.Resources(r, h.node)
	if err != nil {
		return nil
	}
	return api.FromOCILinuxResources(lr, nil)
}
