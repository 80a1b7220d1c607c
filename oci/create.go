package oci

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/errdefs"
	"github.com/berth-cri/berth/ids"
	"github.com/berth-cri/berth/monitorclient"
	"github.com/berth-cri/berth/record"
	"github.com/berth-cri/berth/steptrace"
)

// CreateRequest is one container to create.
type CreateRequest struct {
	// Spec holds the CRI config, the pod and the node. Its ID, Rootfs,
	// Image, ImageName, ImageVolumes and TargetPIDNS are Create's to
	// fill: it names the container and makes its root filesystem from the
	// config's image.
	Spec    SpecOptions
	Runtime Runtime
	// CriuPath is the CRIU binary a restore (an image that is a
	// checkpoint archive) runs; empty is criu from PATH.
	CriuPath string
	// Restore, if set, is a container of a pod checkpoint, already
	// unpacked and checked (PodCheckpoint.Container): the container is
	// restored from it, whatever the config's image says.
	Restore *PreparedRestore
	// Begin, if set, is called in the create's own work (see Create)
	// before anything is made: an error refuses the create (server: the
	// pod is no longer ready), and end is called once the work is done.
	Begin func() (end func(), err error)
}

// EarlyMonitor is a container's monitor started before its root
// filesystem exists (monitorclient.Spawned), so the exec and start-up of the
// monitor overlap the image store's work.
type EarlyMonitor struct {
	sp  *monitorclient.Spawned
	run string
}

// SpawnMonitor starts the monitor of the container id is about to name:
// its run directory (where its log goes) is made now; a crash leaves only
// that directory, which the next start-up sweeps, and the monitor, which
// exits when berthd's end of its stdin closes.
func (m *Manager) SpawnMonitor(id string) (*EarlyMonitor, error) {
	if !ids.Valid(id) {
		return nil, fmt.Errorf("spawn monitor: malformed id %q", id)
	}
	p := m.paths(id)
	if err := os.MkdirAll(p.run, 0o700); err != nil {
		return nil, fmt.Errorf("create bundle of %s: %w", id, err)
	}
	sp, err := monitorclient.Spawn(m.opts.MonitorPath, id, p.monLog())
	if err != nil {
		os.RemoveAll(p.run)
		return nil, err
	}
	return &EarlyMonitor{sp: sp, run: p.run}, nil
}

// Discard ends a monitor Create did not use, and its run directory.
func (e *EarlyMonitor) Discard() {
	if e == nil || e.sp == nil {
		return
	}
	e.sp.Discard()
	e.sp = nil
	// Create never ran, or failed before the monitor: nothing else of
	// the container uses the directory.
	os.RemoveAll(e.run)
}

// Create creates a container in a pod under a new id: its root
// filesystem from the image, its OCI spec and bundle, and the runtime's
// container under a monitor, ready for Start.
//
// kubelet retries a CreateContainer whose deadline passed while the first
// call still works. The work therefore does not stop with its caller (it
// runs under the kubelet-retry rule, package inflight): a retry (same
// pod, name, attempt and config) waits for it and gets its container,
// even if it finished after the first caller gave up. Another container
// with the same name and attempt in the pod is AlreadyExists.
func (m *Manager) Create(ctx context.Context, req *CreateRequest) (*Container, error) {
	md := req.Spec.Config.GetMetadata()
	key := createKey{podID: req.Spec.Pod.ID, name: md.GetName(), attempt: md.GetAttempt()}
	id, err := m.creates.Do(ctx, key, req.Spec.Config, m.createNames(key), func(ctx context.Context) (string, error) {
		if req.Begin != nil {
			end, err := req.Begin()
			if err != nil {
				return "", err
			}
			defer end()
		}
		c, err := m.create(ctx, req)
		if err != nil {
			return "", err
		}
		return c.ID(), nil
	})
	if err != nil {
		return nil, err
	}
	m.mu.RLock()
	c := m.ctrs[id]
	m.mu.RUnlock()
	if c == nil {
		return nil, errdefs.NotFoundf("container %s was removed as it was created", id)
	}
	return c, nil
}

// create is one Create's work. The record is on disk as "creating"
// before anything but the monitor exists, so a crash at any point is
// cleaned on the next start; a failure leaves nothing: no bundle, no
// runtime state, no monitor, no rootfs, no record.
func (m *Manager) create(ctx context.Context, req *CreateRequest) (_ *Container, retErr error) {
	if req.Restore != nil {
		return m.createRestored(ctx, req, checkpointSource{})
	}
	src, err := m.checkpointToRestore(ctx, req.Spec.Config.GetImage().GetImage())
	if err != nil {
		return nil, err
	}
	if src != nil {
		return m.createRestored(ctx, req, *src)
	}
	spec := req.Spec
	spec.ID = ids.New()
	id := spec.ID
	cfg := spec.Config
	if ns := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions(); ns.GetPid() == runtimeapi.NamespaceMode_TARGET {
		nsFile, err := m.targetPIDNamespace(spec.Pod.ID, ns.GetTargetId())
		if err != nil {
			return nil, err
		}
		// Held until the runtime has created the container in it.
		defer nsFile.Close()
		spec.TargetPIDNS = fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), nsFile.Fd())
	}
	// The monitor starts now, while the image store makes the root
	// filesystem; launch hands it its config.
	early, err := m.SpawnMonitor(id)
	if err != nil {
		return nil, err
	}
	defer early.Discard()
	c := m.newCreating(req.Runtime, &spec)
	told := false
	defer func() {
		if retErr != nil {
			if err := m.teardown(context.WithoutCancel(ctx), c); err != nil {
				logFor(id).Errorf("clean up failed create: %v", err)
			}
			if told {
				m.changed(context.WithoutCancel(ctx), c, StepCreateFailed)
			}
		}
	}()
	if err := c.recordCreating(ctx, spec.Pod.LogDirectory, cfg.GetLogPath(), nil); err != nil {
		return nil, err
	}
	img, err := m.makeRootfs(ctx, &spec)
	if err != nil {
		return nil, err
	}
	c.define(func(md *Metadata) {
		md.Image, md.ImageRef, md.ImageID = spec.ImageName, img.Ref, img.ID
		md.StopSignal = stopSignal(cfg.GetStopSignal().String(), spec.Image.StopSignal)
	})

	endSpec := steptrace.Begin(ctx, "spec")
	gen, err := Generate(&spec)
	endSpec()
	if err != nil {
		return nil, err
	}
	endPlugins := steptrace.Begin(ctx, "plugins")
	ch := &Change{Step: StepCreate, Container: c, Spec: gen.Spec}
	err = m.changing(ctx, ch)
	endPlugins()
	if err != nil {
		return nil, err
	}
	told = true
	var resources *runtimeapi.LinuxContainerResources
	if ch.Adjusted {
		resources = adjustedResources(id, gen.Spec, spec.Host, c.Record().Resources)
	}
	c.define(func(md *Metadata) {
		md.User = gen.User
		md.Mounts = gen.Mounts
		md.SharedPID = sharesPIDNamespace(gen.Spec)
	})
	c.delegation = gen.Delegation
	if err := m.launch(ctx, c, gen.Spec, early, resources); err != nil {
		return nil, err
	}
	return c, nil
}

// launch writes the bundle, starts the monitor (which runs the runtime's
// create), records the container as created (with resources, if not nil:
// the ones NRI adjusted) and starts watching for its exit.
func (m *Manager) launch(ctx context.Context, c *Container, spec *rspec.Spec, early *EarlyMonitor, resources *runtimeapi.LinuxContainerResources) error {
	id := c.rec.ID
	if err := m.writeBundle(ctx, c, spec); err != nil {
		return err
	}
	endMonitor := steptrace.Begin(ctx, "monitor and runtime create")
	cfg := m.monitorConfig(c)
	var err error
	var st *monitorclient.Started
	if early != nil && early.sp != nil {
		sp := early.sp
		early.sp = nil // used: the failure paths below are Start's own
		st, err = sp.Start(ctx, cfg)
	} else {
		st, err = monitorclient.Start(ctx, m.opts.MonitorPath, cfg)
	}
	endMonitor()
	if err != nil {
		return fmt.Errorf("create container %s: %w", id, err)
	}
	steptrace.Add(ctx, "runtime create (in the monitor)", st.RuntimeTime)
	if c.delegation != nil {
		// The cgroup exists now and the container has not run yet.
		if err := delegateCgroup(c.delegation); err != nil {
			return fmt.Errorf("create container %s: %w", id, err)
		}
	}
	// The monitor is berthd's child and has just reported: its pid is
	// not reused before it is reaped.
	monStart, _ := procStartTime(st.MonitorPID) // 0 if gone: found by --id
	endRecord := steptrace.Begin(ctx, "record")
	err = c.update(record.Durable, func(s *Status) error {
		s.PID, s.MonitorPID, s.MonitorStart = st.ContainerPID, st.MonitorPID, monStart
		if resources != nil {
			s.Resources = resources
		}
		s.State = StateCreated
		return nil
	})
	endRecord()
	if err != nil {
		return err
	}
	m.add(c)
	m.changed(ctx, c, StepCreated) // before the watcher can tell an exit
	m.watch(c)
	return nil
}

// writeBundle writes the container's bundle (its spec) and makes its log
// directory.
func (m *Manager) writeBundle(ctx context.Context, c *Container, spec *rspec.Spec) error {
	id := c.rec.ID
	defer steptrace.Begin(ctx, "bundle")()
	if err := os.MkdirAll(c.paths.run, 0o700); err != nil {
		return fmt.Errorf("create bundle of %s: %w", id, err)
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("encode spec of %s: %w", id, err)
	}
	if err := os.WriteFile(c.paths.spec(), b, 0o600); err != nil {
		return fmt.Errorf("write spec of %s: %w", id, err)
	}
	if err := makeLogDir(c.rec.LogDir, c.rec.LogPath); err != nil {
		return fmt.Errorf("create log directory of %s: %w", id, err)
	}
	return nil
}

// monitorConfig is the monitor's config for container c.
func (m *Manager) monitorConfig(c *Container) monitorclient.Config {
	return monitorclient.Config{
		ID:             c.rec.ID,
		Bundle:         c.paths.run,
		RuntimePath:    c.rec.Runtime.Path,
		RuntimeRoot:    c.rec.Runtime.Root,
		RuntimeArgs:    c.rec.Runtime.globalArgs(),
		PidFile:        c.paths.pidFile(),
		ExitFile:       c.paths.exit,
		LogPath:        c.rec.LogPath,
		LogDir:         c.rec.LogDir,
		AttachSocket:   c.paths.attach(),
		ControlSocket:  c.paths.control(),
		MonitorLogPath: c.paths.monLog(),
		Terminal:       c.rec.Tty,
		Stdin:          c.rec.Stdin,
		StdinOnce:      c.rec.StdinOnce && c.rec.Stdin,
	}
}

// targetPIDNamespace opens, for PID mode TARGET (ephemeral debug
// containers), the PID namespace of a running CRI container of the same
// pod. The runtime is given berthd's own descriptor of it
// (/proc/<berthd>/fd/N), never the target's pid, which the kernel may
// have given to another process by the time the runtime opens it; the
// caller closes the file once the runtime has joined the namespace.
func (m *Manager) targetPIDNamespace(podID, target string) (*os.File, error) {
	t, err := m.Get(target)
	if err == nil && t.Record().Infra {
		err = errdefs.NotFoundf("container %q not found", target)
	}
	if err != nil {
		return nil, errdefs.Invalidf("PID mode TARGET: %v", err)
	}
	if r := t.Record(); r.PodID != podID {
		return nil, errdefs.Invalidf("PID mode TARGET: container %s is in another pod", r.ID)
	}
	ns, err := OpenPIDNamespace(t)
	if err != nil {
		return nil, fmt.Errorf("PID mode TARGET: %w", err)
	}
	return ns, nil
}

// containerLogPath joins the pod's log directory and the container's
// relative log path, refusing a path that leaves the directory.
func containerLogPath(dir, rel string) (string, error) {
	if dir == "" || rel == "" {
		return "", nil // no log directory: no log, as the CRI says
	}
	if !filepath.IsAbs(dir) {
		// The monitor would refuse it, as an unknown error.
		return "", errdefs.Invalidf("pod log directory %q is not an absolute path", dir)
	}
	if filepath.IsAbs(rel) {
		return "", errdefs.Invalidf("log path %q must be relative to the pod's log directory", rel)
	}
	p := filepath.Join(dir, rel)
	if !strings.HasPrefix(p, filepath.Clean(dir)+string(filepath.Separator)) {
		return "", errdefs.Invalidf("log path %q leaves the pod's log directory", rel)
	}
	return p, nil
}

// makeLogDir makes the directories between the pod's log directory and
// the log file, resolving every component inside the log directory: a
// symlink planted there cannot make berthd create directories elsewhere.
// (The monitor then opens the file itself without following any.)
func makeLogDir(dir, path string) error {
	if path == "" {
		return nil
	}
	// The pod's log directory is kubelet's (trusted), made if missing.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if filepath.Dir(path) == dir {
		return nil
	}
	rel, err := filepath.Rel(dir, filepath.Dir(path))
	if err != nil {
		return err
	}
	return pathrs.MkdirAll(dir, rel, 0o755)
}

// stopSignal is the request's stop signal, else the image's, else SIGTERM.
func stopSignal(cri, image string) string {
	if s := strings.TrimPrefix(cri, "SIGNAL_"); s != "" && s != "RUNTIME_DEFAULT" {
		return s
	}
	if image != "" {
		return image
	}
	return "SIGTERM"
}

// newCreating is the container spec describes, being created: its record
// as the request makes it (state creating, no log path yet), not saved.
func (m *Manager) newCreating(rt Runtime, spec *SpecOptions) *Container {
	cfg := spec.Config
	return m.newContainer(Record{
		Metadata: Metadata{
			ID:          spec.ID,
			PodID:       spec.Pod.ID,
			Name:        cfg.GetMetadata().GetName(),
			Attempt:     cfg.GetMetadata().GetAttempt(),
			Runtime:     rt.forPod(spec.Pod.CgroupParent),
			Labels:      cloneMap(cfg.GetLabels()),
			Annotations: cloneMap(cfg.GetAnnotations()),
			Tty:         cfg.GetTty(),
			Stdin:       cfg.GetStdin(),
			StdinOnce:   cfg.GetStdinOnce(),
			CreatedAt:   time.Now(),
		},
		Status: Status{
			State:     StateCreating,
			Resources: cfg.GetLinux().GetResources(),
		},
	})
}

// recordCreating gives c its log path (logPath beneath the pod's logDir),
// makes its directory and saves its creating record (with restore, for a
// container made from a checkpoint): from here a failure or a crash is
// cleaned up by teardown or the next start.
func (c *Container) recordCreating(ctx context.Context, logDir, logPath string, restore *RestoreSource) error {
	p, err := containerLogPath(logDir, logPath)
	if err != nil {
		return err
	}
	c.define(func(md *Metadata) {
		md.LogPath = p
		if p != "" {
			md.LogDir = filepath.Clean(logDir)
		}
	})
	if err := os.MkdirAll(c.paths.dir, 0o700); err != nil {
		return fmt.Errorf("create container %s: %w", c.rec.ID, err)
	}
	defer steptrace.Begin(ctx, "record")()
	return c.update(record.Durable, func(st *Status) error {
		st.Restore = restore
		return nil
	})
}
