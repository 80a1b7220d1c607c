package server

import (
	"context"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/errdefs"
	"github.com/berth-cri/berth/oci"
	"github.com/berth-cri/berth/sandbox"
)

// CreateContainer creates a container in a pod: its root filesystem from
// the image, its OCI spec and bundle, and the runtime's container under a
// monitor, ready for StartContainer. A retry by kubelet gets the first
// call's container (see oci.Manager.Create). An image that is the path of
// a checkpoint archive makes a container restored from it, which
// StartContainer resumes (see oci's checkpoint_restore.go).
func (s *Server) CreateContainer(ctx context.Context, req *runtimeapi.CreateContainerRequest) (*runtimeapi.CreateContainerResponse, error) {
	if err := validateCreate(req); err != nil {
		return nil, err
	}
	sb, err := s.pod.get(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	id, err := s.createContainer(ctx, sb, req.GetConfig(), nil)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.CreateContainerResponse{ContainerId: id}, nil
}

// createContainer creates a container from cfg in pod sb; restore, if
// set, is the pod checkpoint's container it is restored from
// (RestorePod).
func (s *Server) createContainer(ctx context.Context, sb *sandbox.Sandbox, cfg *runtimeapi.ContainerConfig, restore *oci.PreparedRestore) (string, error) {
	if err := s.checkContainerFeatures(ctx, sb.RuntimeHandler, sb.Config.GetLinux().GetSecurityContext().GetPrivileged(), cfg); err != nil {
		return "", err
	}
	rt, err := s.ociRuntime(sb.RuntimeHandler)
	if err != nil {
		return "", err
	}
	c, err := s.ctr.mgr.Create(ctx, &oci.CreateRequest{
		Spec: oci.SpecOptions{
			Config: cfg,
			Pod:    ociPod(sb),
			Host:   s.ctr.host,
			// The handler's list as the config says now.
			AllowedAnnotations: s.allowedAnnotations(sb.RuntimeHandler),
			CgroupWritable:     s.cgroupWritable(sb.RuntimeHandler),
		},
		Runtime:  rt,
		CriuPath: s.Config().Runtime.CriuPath,
		Restore:  restore,
		Begin:    func() (func(), error) { return s.beginCreate(sb.ID) },
	})
	if err != nil {
		return "", err
	}
	return c.ID(), nil
}

// beginCreate runs in the create's own work, registered under the pod's
// full id: it reads the pod afresh and requires it READY, and holds NRI
// plugins' synchronization until the work ends. The order matters:
// StopPodSandbox and RemovePodSandbox mark the pod NOTREADY before they
// wait for the creates registered, so a create either is waited for or
// finds the pod NOTREADY; it never makes a container in a pod that is
// being removed.
func (s *Server) beginCreate(podID string) (end func(), err error) {
	sb, err := s.pod.get(podID)
	if err != nil {
		return nil, err
	}
	if sb.State != sandbox.StateReady {
		return nil, errdefs.FailedPreconditionf("pod sandbox %s is %s, not ready: no container can be created in it", sb.ID, sb.State)
	}
	return s.blockPluginSync(), nil
}

// validateCreate checks what the request must have before any work.
func validateCreate(req *runtimeapi.CreateContainerRequest) error {
	cfg := req.GetConfig()
	switch {
	case req.GetPodSandboxId() == "":
		return errdefs.Invalidf("pod_sandbox_id is empty")
	case cfg == nil:
		return errdefs.Invalidf("config is missing")
	case cfg.GetMetadata() == nil:
		return errdefs.Invalidf("config.metadata is missing")
	case cfg.GetImage().GetImage() == "":
		return errdefs.Invalidf("config.image.image is empty")
	}
	name := cfg.GetMetadata().GetName()
	if name == "" || len(name) > 253 || strings.ContainsAny(name, "/\x00 \t\n") {
		return errdefs.Invalidf("container name %q: want 1 to 253 characters, no '/', NUL or whitespace", name)
	}
	return nil
}
