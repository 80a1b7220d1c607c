package oci

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/moby/profiles/seccomp"
	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-cri/berth/cgroupdriver"
	"github.com/berth-cri/berth/errdefs"
	"github.com/berth-cri/berth/ids"
	"github.com/berth-cri/berth/record"
)

// infraUser is the unprivileged user the pause process runs as, the one
// Kubernetes' pause image uses.
const infraUser = 65535

// infraStopGrace is how long the pause process gets to exit on SIGTERM
// (it exits at once) before it is killed.
const infraStopGrace = 2 * time.Second

// InfraRequest is a pod's infra process: berth-pause as PID 1 of the
// pod's own PID namespace, in the pod's network, IPC and UTS namespaces,
// run through the pod's runtime handler like any container.
type InfraRequest struct {
	Pod       *Pod
	Runtime   Runtime
	PausePath string
}

// Infra is a running infra container.
type Infra struct {
	// PID is the infra's pid, for people.
	PID int
	// PIDNamespace is the infra's PID namespace, opened through a pidfd
	// while the process was checked to be the infra; nil for a VM
	// runtime, whose PID namespace is inside the VM. The caller closes it.
	PIDNamespace *os.File
	// Exited is closed once its exit is recorded.
	Exited <-chan struct{}
}

// StartInfra creates and starts the pod's infra container. Its id is the
// pod's id (ids share one runtime namespace and pod ids are random like
// container ids). It needs no image: its root is an empty read-only
// directory under the run root with the pause binary bound at /pause.
// Its PID namespace is opened before it starts, while no process of the
// pod exists that could kill it.
func (m *Manager) StartInfra(ctx context.Context, req *InfraRequest) (_ *Infra, retErr error) {
	id := req.Pod.ID
	if !ids.Valid(id) {
		return nil, fmt.Errorf("infra of pod %q: malformed pod id", id)
	}
	if _, err := os.Stat(req.PausePath); err != nil {
		return nil, fmt.Errorf("infra of pod %s: pause binary: %w", id, err)
	}
	rootfs, err := m.infraRootfs()
	if err != nil {
		return nil, err
	}
	spec, err := infraSpec(id, req, rootfs, m.opts.Host)
	if err != nil {
		return nil, err
	}
	c := m.newContainer(Record{
		Metadata: Metadata{
			ID: id, PodID: id, Name: "infra", Infra: true, Runtime: req.Runtime.forPod(req.Pod.CgroupParent),
			StopSignal: "SIGTERM", CreatedAt: time.Now(),
			User: User{UID: infraUser, GID: infraUser, Groups: []uint32{infraUser}},
		},
		Status: Status{State: StateCreating},
	})
	var ns *os.File
	defer func() {
		if retErr == nil {
			return
		}
		if ns != nil {
			ns.Close()
		}
		cleanCtx := context.WithoutCancel(ctx)
		var err error
		if m.Known(id) {
			// Launched: kill it and wait for its exit before removing.
			err = m.Remove(cleanCtx, c)
		} else {
			err = m.teardown(cleanCtx, c)
		}
		if err != nil {
			logFor(id).Errorf("clean up failed infra: %v", err)
		}
	}()
	if err := os.MkdirAll(c.paths.dir, 0o700); err != nil {
		return nil, fmt.Errorf("infra of pod %s: %w", id, err)
	}
	if err := c.update(record.Durable, nil); err != nil {
		return nil, err
	}
	if err := m.launch(ctx, c, spec, nil, nil); err != nil {
		return nil, err
	}
	if !req.Runtime.VM {
		if ns, err = openInitPIDNamespace(c.rec.PID, c.rec.MonitorPID); err != nil {
			return nil, fmt.Errorf("infra of pod %s: %w", id, err)
		}
	}
	if err := m.Start(ctx, c); err != nil {
		return nil, err
	}
	return &Infra{PID: c.rec.PID, PIDNamespace: ns, Exited: c.exited}, nil
}

// FindInfra returns the pod's infra if it runs (after berthd restarted),
// its PID namespace opened again through a pidfd; not found otherwise.
func (m *Manager) FindInfra(podID string) (*Infra, error) {
	m.mu.RLock()
	c, ok := m.ctrs[podID]
	m.mu.RUnlock()
	if !ok || !c.rec.Infra {
		return nil, errdefs.NotFoundf("pod %s has no infra container", podID)
	}
	rec := c.Record()
	if rec.State != StateRunning {
		return nil, errdefs.NotFoundf("the infra of pod %s is %s", podID, rec.State)
	}
	inf := &Infra{PID: rec.PID, Exited: c.exited}
	if !rec.Runtime.VM {
		ns, err := openInitPIDNamespace(rec.PID, rec.MonitorPID)
		if err != nil {
			return nil, errdefs.NotFound(fmt.Errorf("the infra of pod %s: %w", podID, err))
		}
		inf.PIDNamespace = ns
	}
	return inf, nil
}

// StopInfra stops and removes the pod's infra container; a pod without
// one is no error.
func (m *Manager) StopInfra(ctx context.Context, podID string) error {
	if !m.Known(podID) {
		return nil
	}
	c, err := m.Get(podID)
	if err != nil {
		return nil
	}
	if err := m.Stop(ctx, c, infraStopGrace); err != nil {
		return err
	}
	return m.Remove(ctx, c)
}

// infraRootfs is the shared, empty root of every infra container: only
// the mount points it needs. Each runtime bind-mounts it into its own
// mount namespace read-only, so one directory serves every pod.
func (m *Manager) infraRootfs() (string, error) {
	root := filepath.Join(m.opts.RunRoot, "infra-rootfs")
	for _, d := range []string{"proc", "dev", "sys"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return "", fmt.Errorf("infra rootfs: %w", err)
		}
	}
	pause := filepath.Join(root, "pause")
	if _, err := os.Stat(pause); err != nil {
		if err := os.WriteFile(pause, nil, 0o755); err != nil {
			return "", fmt.Errorf("infra rootfs: %w", err)
		}
	}
	return root, nil
}

func infraSpec(id string, req *InfraRequest, rootfs string, h *Host) (*rspec.Spec, error) {
	pod := req.Pod
	adj := OOMScoreAdj(-998, h) // kubelet's pause value: the last to go
	s := &rspec.Spec{
		Version:  specVersion,
		Root:     &rspec.Root{Path: rootfs, Readonly: true},
		Hostname: pod.Hostname,
		Process: &rspec.Process{
			Args:            []string{"/pause"},
			Cwd:             "/",
			Env:             []string{defaultPath},
			User:            rspec.User{UID: infraUser, GID: infraUser},
			NoNewPrivileges: true,
			Capabilities:    &rspec.LinuxCapabilities{},
			OOMScoreAdj:     &adj,
		},
		Mounts: []rspec.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			bindMount(req.PausePath, "/pause", true),
		},
		Linux: &rspec.Linux{
			CgroupsPath:   cgroupdriver.ContainerCgroupsPath(pod.CgroupParent, id),
			Resources:     &rspec.LinuxResources{Devices: defaultDeviceRules()},
			MaskedPaths:   DefaultMaskedPaths,
			ReadonlyPaths: DefaultReadonlyPaths,
			Namespaces: []rspec.LinuxNamespace{
				{Type: rspec.MountNamespace},
				{Type: rspec.PIDNamespace},
			},
		},
		Annotations: map[string]string{
			AnnotationContainerType:    "sandbox",
			AnnotationSandboxID:        pod.ID,
			AnnotationSandboxName:      pod.Name,
			AnnotationSandboxNamespace: pod.Namespace,
			AnnotationSandboxUID:       pod.UID,
		},
	}
	setCgroupAnnotations(pod.CgroupParent, s.Annotations)
	for _, j := range []struct {
		typ  rspec.LinuxNamespaceType
		path string
	}{
		{rspec.NetworkNamespace, pod.NetNSPath},
		{rspec.IPCNamespace, pod.IPCNSPath},
		{rspec.UTSNamespace, pod.UTSNSPath},
	} {
		if j.path != "" {
			s.Linux.Namespaces = append(s.Linux.Namespaces, rspec.LinuxNamespace{Type: j.typ, Path: j.path})
		}
	}
	if pod.UTSNSPath == "" {
		s.Hostname = ""
	}
	if err := infraUserNamespace(s, pod, rootfs); err != nil {
		return nil, fmt.Errorf("infra of pod %s: %w", pod.ID, err)
	}
	sc, err := seccomp.GetDefaultProfile(s)
	if err != nil {
		return nil, fmt.Errorf("infra seccomp profile: %w", err)
	}
	s.Linux.Seccomp = sc
	return s, nil
}
