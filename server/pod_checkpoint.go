package server

import (
	"context"
	"errors"
	"sort"

	"github.com/sirupsen/logrus"
	"google.golang.org/protobuf/encoding/protojson"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/errdefs"
	"github.com/berth-cri/berth/oci"
	"github.com/berth-cri/berth/sandbox"
)

// CheckpointPod writes a checkpoint of the named running containers of a
// ready pod into the caller's empty directory, one consistent cut (oci's
// checkpoint_pod.go), and leaves them running. The pod's config goes
// with it for RestorePod.
func (s *Server) CheckpointPod(ctx context.Context, req *runtimeapi.CheckpointPodRequest) (*runtimeapi.CheckpointPodResponse, error) {
	if err := refuseOptions(req.GetOptions()); err != nil {
		return nil, err
	}
	ids := req.GetContainerIds()
	if len(ids) == 0 {
		return nil, errdefs.Invalidf("container_ids is empty: name the running containers to checkpoint")
	}
	sb, err := s.pod.get(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	if sb.State != sandbox.StateReady {
		return nil, errdefs.FailedPreconditionf("pod sandbox %s is %s, not ready: it cannot be checkpointed", sb.ID, sb.State)
	}
	seen := map[string]bool{}
	ctrs := make([]*oci.Container, 0, len(ids))
	for _, id := range ids {
		c, err := s.ctr.get(id)
		if err != nil {
			return nil, err
		}
		if seen[c.ID()] {
			return nil, errdefs.Invalidf("container_ids names container %s twice", c.ID())
		}
		seen[c.ID()] = true
		ctrs = append(ctrs, c)
	}
	pod, err := protojson.Marshal(sb.Config)
	if err != nil {
		return nil, err
	}
	err = s.ctr.mgr.CheckpointPod(ctx, sb.ID, ctrs, oci.PodCheckpointOptions{
		Dir:            req.GetOutputPath(),
		CriuPath:       s.Config().Runtime.CriuPath,
		Pod:            pod,
		RuntimeHandler: sb.RuntimeHandler,
	})
	if err != nil {
		return nil, err
	}
	return &runtimeapi.CheckpointPodResponse{}, nil
}

// RestorePod makes a new pod from the request's config and, in it, a
// container restored from each of the checkpoint's, configured by the
// request's config of the same name; they are CREATED, and
// StartContainer restores each (as a container restored from an
// archive). The checkpoint is read and checked, and the configs matched
// to it, before anything is made; on error everything the call made is
// removed.
func (s *Server) RestorePod(ctx context.Context, req *runtimeapi.RestorePodRequest) (_ *runtimeapi.RestorePodResponse, retErr error) {
	if err := refuseOptions(req.GetOptions()); err != nil {
		return nil, err
	}
	if req.GetConfig() == nil {
		return nil, errdefs.Invalidf("config is missing")
	}
	handler, _, err := s.Config().Runtime.Handler(req.GetRuntimeHandler())
	if err != nil {
		return nil, err
	}
	cfgs := req.GetContainerConfigs()
	if len(cfgs) == 0 {
		return nil, errdefs.Invalidf("container_configs is empty")
	}
	for _, cfg := range cfgs {
		if err := validateCreate(&runtimeapi.CreateContainerRequest{PodSandboxId: "restore", Config: cfg}); err != nil {
			return nil, err
		}
	}
	pc, err := s.ctr.mgr.OpenPodCheckpoint(ctx, req.GetCheckpointPath())
	if err != nil {
		return nil, err
	}
	defer pc.Close()
	if err := matchPodCheckpoint(pc, handler, req.GetConfig(), cfgs); err != nil {
		return nil, err
	}

	run, err := s.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: req.GetConfig(), RuntimeHandler: handler})
	if err != nil {
		return nil, err
	}
	podID := run.GetPodSandboxId()
	defer func() {
		if retErr != nil {
			s.removeRestoredPod(context.WithoutCancel(ctx), podID)
		}
	}()
	sb, err := s.pod.get(podID)
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.RestorePodResponse{PodSandboxId: podID}
	for _, cfg := range cfgs {
		name := cfg.GetMetadata().GetName()
		id, err := s.createContainer(ctx, sb, cfg, pc.Container(name))
		if err != nil {
			return nil, err
		}
		resp.RestoredContainers = append(resp.RestoredContainers, &runtimeapi.RestoredContainer{Name: name, ContainerId: id})
	}
	return resp, nil
}

// matchPodCheckpoint refuses a RestorePod whose handler, pod namespaces
// or container configs do not fit the checkpoint: the configs' names
// must be exactly the checkpoint's, and each must describe its
// container's process (oci.PreparedRestore.CheckConfig).
func matchPodCheckpoint(pc *oci.PodCheckpoint, handler string, pod *runtimeapi.PodSandboxConfig, cfgs []*runtimeapi.ContainerConfig) error {
	if pc.RuntimeHandler != handler {
		return errdefs.Invalidf("the checkpoint was made with runtime handler %q, not %q: restore it with the same handler", pc.RuntimeHandler, handler)
	}
	var was runtimeapi.PodSandboxConfig
	if err := protojson.Unmarshal(pc.Pod, &was); err != nil {
		return errdefs.Invalidf("pod checkpoint %s: its pod config: %v", pc.Dir, err)
	}
	wasNS := was.GetLinux().GetSecurityContext().GetNamespaceOptions()
	nowNS := pod.GetLinux().GetSecurityContext().GetNamespaceOptions()
	if wasNS.GetNetwork() != nowNS.GetNetwork() || wasNS.GetPid() != nowNS.GetPid() || wasNS.GetIpc() != nowNS.GetIpc() {
		return errdefs.Invalidf("the pod's namespace options %v are not the checkpointed pod's %v", nowNS, wasNS)
	}
	var names []string
	for _, cfg := range cfgs {
		name := cfg.GetMetadata().GetName()
		p := pc.Container(name)
		if p == nil {
			return errdefs.Invalidf("container_configs names %q, which the checkpoint does not hold (it holds %v)", name, pc.Names)
		}
		if err := p.CheckConfig(cfg); err != nil {
			return err
		}
		names = append(names, name)
	}
	sort.Strings(names)
	for i := 1; i < len(names); i++ {
		if names[i] == names[i-1] {
			return errdefs.Invalidf("container_configs names %q twice", names[i])
		}
	}
	if len(names) != len(pc.Names) {
		return errdefs.Invalidf("container_configs name %v, the checkpoint holds %v: every container must be configured", names, pc.Names)
	}
	return nil
}

// removeRestoredPod undoes a RestorePod that failed: the pod and every
// container made in it.
func (s *Server) removeRestoredPod(ctx context.Context, podID string) {
	_, serr := s.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID})
	_, rerr := s.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID})
	if err := errors.Join(serr, rerr); err != nil {
		logrus.WithField("pod_sandbox_id", podID).Errorf("remove the pod of a failed RestorePod: %v", err)
	}
}

// refuseOptions refuses every runtime-specific option: Berth documents
// none, and the CRI says unsupported keys must not be ignored.
func refuseOptions(opts map[string]string) error {
	for k := range opts {
		return errdefs.Invalidf("option %q is not supported: Berth takes no checkpoint or restore options", k)
	}
	return nil
}
