package server

import (
	"context"

	"github.com/sirupsen/logrus"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/errdefs"
	"github.com/berth-cri/berth/oci"
)

// handlerFeatures is what a runtime handler can do for the CRI features
// kubelet asks about. Recursive read-only mounts need only the runtime.
// User namespaces also need idmapped mounts from the image store (overlay
// over idmapped layers), or each container would cost a chowned copy of
// its image. A runtime that cannot say is taken to support neither.
func (s *Server) handlerFeatures(ctx context.Context, name string) oci.HandlerFeatures {
	rt, err := s.ociRuntime(name)
	if err != nil {
		return oci.HandlerFeatures{}
	}
	f, err := rt.Features(ctx)
	if err != nil {
		// Debug: Status comes every few seconds, and a broken handler
		// is reported where it is used.
		logrus.WithField("runtime_handler", rt.Handler).Debugf("runtime features unknown, reporting none: %v", err)
		return oci.HandlerFeatures{}
	}
	if f.UserNamespaces && (s.ctr.rootfs == nil || !s.ctr.rootfs.SupportsIDMappedLayers()) {
		f.UserNamespaces = false
	}
	return f
}

func criHandlerFeatures(f oci.HandlerFeatures) *runtimeapi.RuntimeHandlerFeatures {
	return &runtimeapi.RuntimeHandlerFeatures{
		RecursiveReadOnlyMounts: f.RecursiveReadOnlyMounts,
		UserNamespaces:          f.UserNamespaces,
	}
}

// runtimeFeatures are the node-wide features Status announces: the
// supplemental groups policy (Merge and Strict) is Berth's own work in
// every handler's spec, so it holds for all.
func runtimeFeatures() *runtimeapi.RuntimeFeatures {
	return &runtimeapi.RuntimeFeatures{SupplementalGroupsPolicy: true}
}

// checkPodFeatures refuses a pod that needs what its handler cannot do.
func (s *Server) checkPodFeatures(ctx context.Context, handler string, cfg *runtimeapi.PodSandboxConfig) error {
	u := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions().GetUsernsOptions()
	if u == nil || u.GetMode() != runtimeapi.NamespaceMode_POD {
		return nil
	}
	if !s.handlerFeatures(ctx, handler).UserNamespaces {
		return errdefs.Invalidf("user namespace POD: runtime handler %q does not support user namespaces with idmapped mounts (see Status runtime_handlers features)", handler)
	}
	return nil
}

// checkContainerFeatures refuses a container that needs what its pod's
// handler cannot do, and a privileged container in a pod that is not
// privileged (as containerd and CRI-O do: kubelet marks a pod privileged
// when any of its containers is).
func (s *Server) checkContainerFeatures(ctx context.Context, handler string, podPrivileged bool, cfg *runtimeapi.ContainerConfig) error {
	if cfg.GetLinux().GetSecurityContext().GetPrivileged() && !podPrivileged {
		return errdefs.Invalidf("a privileged container needs a privileged pod sandbox (linux.security_context.privileged in the pod's config)")
	}
	for _, m := range cfg.GetMounts() {
		if m.GetRecursiveReadOnly() && !s.handlerFeatures(ctx, handler).RecursiveReadOnlyMounts {
			return errdefs.Invalidf("mount %s: runtime handler %q does not support recursive read-only mounts", m.GetContainerPath(), handler)
		}
	}
	return nil
}
