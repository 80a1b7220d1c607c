package server

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/errdefs"
	"github.com/berth-cri/berth/ids"
	"github.com/berth-cri/berth/oci"
	"github.com/berth-cri/berth/sandbox"
)

// createTimeout bounds one container's creation once it no longer
// depends on its caller (whose deadline may pass first).
const createTimeout = 5 * time.Minute

// createFlight is one CreateContainer at work, or done while nobody
// collected its result.
type createFlight struct {
	req  *runtimeapi.CreateContainerRequest
	done chan struct{}
	// id and err are read only after done is closed.
	id  string
	err error
}

// CreateContainer creates a container in a pod: its root filesystem from
// the image, its OCI spec and bundle, and the runtime's container under a
// monitor, ready for StartContainer.
//
// kubelet retries a CreateContainer whose deadline passed while the first
// call still works. The work therefore does not stop with its caller: a
// retry (same pod, name, attempt and request) waits for it and gets its
// container, even if it finished after the first caller gave up. Another
// container with the same name and attempt in the pod is AlreadyExists.
func (s *Server) CreateContainer(ctx context.Context, req *runtimeapi.CreateContainerRequest) (*runtimeapi.CreateContainerResponse, error) {
	if err := validateCreate(req); err != nil {
		return nil, err
	}
	sb, err := s.pod.get(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	if sb.State != sandbox.StateReady {
		return nil, errdefs.FailedPreconditionf("pod sandbox %s is %s, not ready", sb.ID, sb.State)
	}
	md := req.GetConfig().GetMetadata()
	key := fmt.Sprintf("%s/%s/%d", sb.ID, md.GetName(), md.GetAttempt())

	s.ctr.mu.Lock()
	f, err := s.ctr.flightLocked(key, req)
	if err == nil && f == nil {
		// Ours to run.
		f = &createFlight{req: req, done: make(chan struct{})}
		s.ctr.creating[key] = f
		go func() {
			workCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), createTimeout)
			defer cancel()
			f.id, f.err = s.createContainer(workCtx, sb, req)
			close(f.done)
		}()
	}
	s.ctr.mu.Unlock()
	if err != nil {
		return nil, err
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		// The work goes on; a retry collects it.
		return nil, fmt.Errorf("container %s in pod %s is still being created: %w", md.GetName(), sb.ID, ctx.Err())
	}
	s.ctr.mu.Lock()
	if s.ctr.creating[key] == f {
		delete(s.ctr.creating, key)
	}
	s.ctr.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	return &runtimeapi.CreateContainerResponse{ContainerId: f.id}, nil
}

// flightLocked returns the CreateContainer under way (or finished and
// not collected) for key, nil if there is none. A different request for a
// key in flight, or a name an existing container has, is AlreadyExists.
// c.mu is held.
func (c *containerService) flightLocked(key string, req *runtimeapi.CreateContainerRequest) (*createFlight, error) {
	if f, ok := c.creating[key]; ok {
		stale := false
		select {
		case <-f.done:
			// Finished while nobody waited: a failure is tried again, a
			// container is handed over if it is still there.
			stale = f.err != nil || !c.mgr.Known(f.id)
		default:
		}
		if !stale {
			if !proto.Equal(f.req, req) {
				return nil, errdefs.AlreadyExistsf("container name %s is being created by a different request", key)
			}
			return f, nil
		}
		delete(c.creating, key)
	}
	podID, name, attempt := splitKey(key)
	taken := c.mgr.List(func(r *oci.Record) bool {
		return r.PodID == podID && r.Name == name && r.Attempt == attempt
	})
	if len(taken) > 0 {
		return nil, errdefs.AlreadyExistsf("container name %q (attempt %d) is already used in pod %s by container %s", name, attempt, podID, taken[0].ID)
	}
	return nil, nil
}

func splitKey(key string) (podID, name string, attempt uint32) {
	podID, rest, _ := strings.Cut(key, "/")
	i := strings.LastIndex(rest, "/")
	a, _ := strconv.ParseUint(rest[i+1:], 10, 32)
	return podID, rest[:i], uint32(a)
}

// createContainer does the work: root filesystem, spec, runtime create.
func (s *Server) createContainer(ctx context.Context, sb *sandbox.Sandbox, req *runtimeapi.CreateContainerRequest) (string, error) {
	cfg := req.GetConfig()
	rt, err := s.ociRuntime(sb.RuntimeHandler)
	if err != nil {
		return "", err
	}
	var targetPIDNS string
	if ns := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions(); ns.GetPid() == runtimeapi.NamespaceMode_TARGET {
		if targetPIDNS, err = s.ctr.targetPIDNamespace(sb.ID, ns.GetTargetId()); err != nil {
			return "", err
		}
	}
	id := ids.New()
	store := s.ctr.rootfs
	rfs, err := store.CreateContainerRootfs(ctx, id, storageName(sb, cfg.GetMetadata()), cfg.GetImage().GetImage())
	if err != nil {
		return "", err
	}
	rootfs, err := store.MountContainerRootfs(id)
	if err != nil {
		if rerr := store.RemoveContainerRootfs(id); rerr != nil {
			err = fmt.Errorf("%w (and removing the root filesystem: %v)", err, rerr)
		}
		return "", err
	}
	img := rfs.Config
	_, err = s.ctr.mgr.Create(ctx, &oci.CreateRequest{
		Spec: oci.SpecOptions{
			ID:     id,
			Config: cfg,
			Pod:    ociPod(sb),
			Image: oci.ImageConfig{
				Entrypoint: img.Entrypoint, Cmd: img.Cmd, Env: img.Env,
				User: img.User, WorkingDir: img.WorkingDir, StopSignal: img.StopSignal,
			},
			ImageName:   cfg.GetImage().GetImage(),
			Rootfs:      rootfs,
			TargetPIDNS: targetPIDNS,
			Host:        s.ctr.host,
			// The handler's list as the config says now.
			AllowedAnnotations: s.allowedAnnotations(sb.RuntimeHandler),
		},
		Runtime:  rt,
		ImageRef: rfs.ImageRef,
		ImageID:  rfs.ImageID,
	})
	if err != nil {
		return "", err
	}
	return id, nil
}

// targetPIDNamespace is the PID namespace of a running container of the
// same pod, for PID mode TARGET (ephemeral debug containers).
func (c *containerService) targetPIDNamespace(podID, target string) (string, error) {
	t, err := c.get(target)
	if err != nil {
		return "", errdefs.Invalidf("PID mode TARGET: %v", err)
	}
	r := t.Record()
	if r.PodID != podID {
		return "", errdefs.Invalidf("PID mode TARGET: container %s is in another pod", r.ID)
	}
	if r.State != oci.StateRunning || r.PID <= 0 {
		return "", errdefs.FailedPreconditionf("PID mode TARGET: container %s is not running", r.ID)
	}
	return fmt.Sprintf("/proc/%d/ns/pid", r.PID), nil
}

// storageName is the container's unique name in the image store, the
// one kubelet's tools know from CRI-O: k8s_<name>_<pod>_<ns>_<uid>_<attempt>.
func storageName(sb *sandbox.Sandbox, md *runtimeapi.ContainerMetadata) string {
	return fmt.Sprintf("k8s_%s_%s_%s_%s_%d", md.GetName(), sb.Metadata.Name, sb.Metadata.Namespace, sb.Metadata.UID, md.GetAttempt())
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
