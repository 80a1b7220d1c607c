package server

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/errdefs"
	"github.com/berth-cri/berth/ids"
	"github.com/berth-cri/berth/inflight"
	"github.com/berth-cri/berth/oci"
	"github.com/berth-cri/berth/sandbox"
	"github.com/berth-cri/berth/steptrace"
	"github.com/berth-cri/berth/storage"
)

// createTimeout bounds one container's creation once it no longer
// depends on its caller (whose deadline may pass first).
const createTimeout = 5 * time.Minute

// containerKey names a container in its pod, as kubelet does; a struct,
// so no two names share a key.
type containerKey struct {
	podID   string
	name    string
	attempt uint32
}

func (k containerKey) String() string {
	return fmt.Sprintf("container %q (attempt %d) in pod %s", k.name, k.attempt, k.podID)
}

func newCreates() *inflight.Calls[containerKey, *runtimeapi.CreateContainerRequest] {
	return inflight.New[containerKey](func(a, b *runtimeapi.CreateContainerRequest) bool {
		return proto.Equal(a, b)
	}, createTimeout)
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
	if err := s.checkContainerFeatures(ctx, sb.RuntimeHandler, sb.Config.GetLinux().GetSecurityContext().GetPrivileged(), req.GetConfig()); err != nil {
		return nil, err
	}
	id, err := s.createIn(ctx, sb.ID, req)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.CreateContainerResponse{ContainerId: id}, nil
}

// createIn registers the create with the pod's full id, then, in the
// call's work, reads the pod afresh and requires it READY. The order
// matters: StopPodSandbox and RemovePodSandbox mark the pod NOTREADY
// before they wait for the creates registered, so a create either is
// waited for or finds the pod NOTREADY; it never makes a container in a
// pod that is being removed.
func (s *Server) createIn(ctx context.Context, podID string, req *runtimeapi.CreateContainerRequest) (string, error) {
	md := req.GetConfig().GetMetadata()
	key := containerKey{podID: podID, name: md.GetName(), attempt: md.GetAttempt()}
	c := &s.ctr
	return c.creates.Do(ctx, key, req, inflight.Names{
		Taken: func() error {
			taken := c.mgr.List(func(r *oci.Record) bool {
				return r.PodID == key.podID && r.Name == key.name && r.Attempt == key.attempt
			})
			if len(taken) > 0 {
				return errdefs.AlreadyExistsf("container name %q (attempt %d) is already used in pod %s by container %s", key.name, key.attempt, key.podID, taken[0].ID)
			}
			return nil
		},
		Alive: c.mgr.Known,
	}, func(ctx context.Context) (string, error) {
		sb, err := s.pod.get(podID)
		if err != nil {
			return "", err
		}
		if sb.State != sandbox.StateReady {
			return "", errdefs.FailedPreconditionf("pod sandbox %s is %s, not ready: no container can be created in it", sb.ID, sb.State)
		}
		return s.createContainer(ctx, sb, req)
	})
}

// createContainer does the work: root filesystem, spec, runtime create.
func (s *Server) createContainer(ctx context.Context, sb *sandbox.Sandbox, req *runtimeapi.CreateContainerRequest) (string, error) {
	defer s.blockPluginSync()()
	cfg := req.GetConfig()
	rt, err := s.ociRuntime(sb.RuntimeHandler)
	if err != nil {
		return "", err
	}
	var targetPIDNS string
	if ns := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions(); ns.GetPid() == runtimeapi.NamespaceMode_TARGET {
		var nsFile *os.File
		if targetPIDNS, nsFile, err = s.ctr.targetPIDNamespace(sb.ID, ns.GetTargetId()); err != nil {
			return "", err
		}
		// Held until the runtime has created the container in it.
		defer nsFile.Close()
	}
	id := ids.New()
	// The monitor starts now, while the image store makes the root
	// filesystem; Create hands it its config.
	early, err := s.ctr.mgr.SpawnMonitor(id)
	if err != nil {
		return "", err
	}
	defer early.Discard()
	store := s.ctr.rootfs
	endLayer := steptrace.Begin(ctx, "rootfs layer")
	rfs, err := store.CreateContainerRootfs(ctx, id, storageName(sb, cfg.GetMetadata()), cfg.GetImage().GetImage(), rootfsOptions(sb)...)
	endLayer()
	if err != nil {
		return "", err
	}
	endMount := steptrace.Begin(ctx, "rootfs mount")
	rootfs, err := store.MountContainerRootfs(id)
	endMount()
	if err != nil {
		if rerr := store.RemoveContainerRootfs(id); rerr != nil {
			err = fmt.Errorf("%w (and removing the root filesystem: %v)", err, rerr)
		}
		return "", err
	}
	volumes, err := s.ctr.imageVolumes(ctx, id, cfg.GetMounts())
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
			ImageName:    imageNameFor(cfg.GetImage(), rfs),
			Rootfs:       rootfs,
			TargetPIDNS:  targetPIDNS,
			Host:         s.ctr.host,
			ImageVolumes: volumes,
			// The handler's list as the config says now.
			AllowedAnnotations: s.allowedAnnotations(sb.RuntimeHandler),
			CgroupWritable:     s.cgroupWritable(sb.RuntimeHandler),
		},
		Runtime:  rt,
		ImageRef: rfs.ImageRef,
		ImageID:  rfs.ImageID,
		Monitor:  early,
	})
	if err != nil {
		return "", err
	}
	return id, nil
}

// targetPIDNamespace opens the PID namespace of a running container of
// the same pod, for PID mode TARGET (ephemeral debug containers). The
// path handed to the runtime names berthd's own descriptor of it
// (/proc/<berthd>/fd/N), never the target's pid, which the kernel may
// have given to another process by the time the runtime opens it; the
// caller closes the file once the runtime has joined the namespace.
func (c *containerService) targetPIDNamespace(podID, target string) (string, *os.File, error) {
	t, err := c.get(target)
	if err != nil {
		return "", nil, errdefs.Invalidf("PID mode TARGET: %v", err)
	}
	if r := t.Record(); r.PodID != podID {
		return "", nil, errdefs.Invalidf("PID mode TARGET: container %s is in another pod", r.ID)
	}
	ns, err := oci.OpenPIDNamespace(t)
	if err != nil {
		return "", nil, fmt.Errorf("PID mode TARGET: %w", err)
	}
	return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), ns.Fd()), ns, nil
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

// imageNameFor is the image ContainerStatus reports: the name the user
// wrote, which kubelet sends as user_specified_image while it names the
// image by ID, else a name of the image (see storage.ContainerRootfs).
func imageNameFor(spec *runtimeapi.ImageSpec, rfs *storage.ContainerRootfs) string {
	if u := spec.GetUserSpecifiedImage(); u != "" {
		return u
	}
	return rfs.ImageName
}
