package server

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/berth-cri/berth/errdefs"
	"github.com/berth-cri/berth/oci"
	"github.com/berth-cri/berth/sandbox"
	"github.com/berth-cri/berth/storage"
)

// containerService is the container state: an oci.Manager, which does
// the work (and keeps the CreateContainer calls in flight). The RPCs are in
// container_create.go, container_lifecycle.go, container_status.go and
// container_exec.go.
type containerService struct {
	mgr    *oci.Manager
	host   *oci.Host
	rootfs *storage.Store // the image store, which holds root filesystems
	// stopTimeout is the configured runtime.stop_timeout_default.
	stopTimeout func() time.Duration
}

// initContainers restores every container from disk (see oci.NewManager)
// and returns the steps restoring found, for New to tell once pods are
// back.
func (s *Server) initContainers(ctx context.Context) ([]oci.Change, error) {
	cfg := s.Config()
	host, err := oci.DetectHost(cfg.Runtime.RestrictOOMScoreAdj)
	if err != nil {
		return nil, err
	}
	host.SeccompDefaultWhenEmpty = cfg.Runtime.SeccompUseDefaultWhenEmpty
	if err := oci.LoadDefaultAppArmorProfile(ctx, host); err != nil {
		return nil, err
	}
	store := s.img.store
	mgr, found, err := oci.NewManager(ctx, oci.Options{
		Root:                 cfg.Root,
		RunRoot:              cfg.RunRoot,
		MonitorPath:          s.binPath(cfg.Runtime.MonitorPath, "berth-monitor"),
		Host:                 host,
		Rootfs:               rootfsStore{store},
		ExecSyncMaxOutput:    min(cfg.Runtime.ExecSyncMaxOutput, maxExecOutput),
		ExecSyncOutputBudget: cfg.Runtime.ExecSyncOutputBudget,
		Notifier:             containerNotifier{s},
	})
	if err != nil {
		return nil, err
	}
	s.ctr = containerService{
		mgr: mgr, host: host, rootfs: store,
		stopTimeout: func() time.Duration { return s.Config().Runtime.StopTimeoutDefault.Duration },
	}
	return found, nil
}

// removeOrphanContainers removes, once pods are restored, the containers
// (infra included) whose pod a crash left gone.
func (s *Server) removeOrphanContainers(ctx context.Context) {
	mgr := s.ctr.mgr
	for _, c := range mgr.All() {
		rec := c.Record()
		if _, err := s.pod.get(rec.PodID); !errdefs.IsNotFound(err) {
			continue
		}
		logrus.WithField("container", rec.ID).Infof("removing a container of pod %s, which is gone", rec.PodID)
		if err := mgr.Remove(ctx, c); err != nil {
			logrus.WithField("container", rec.ID).Errorf("remove: %v", err)
		}
	}
}

func (c *containerService) close() error {
	if c.mgr == nil {
		return nil
	}
	return c.mgr.Close()
}

func (c *containerService) count() int {
	if c.mgr == nil {
		return 0
	}
	return c.mgr.Count()
}

// get finds a CRI container (never an infra) by id or unique prefix.
func (c *containerService) get(idOrPrefix string) (*oci.Container, error) {
	ctr, err := c.mgr.Get(idOrPrefix)
	if err != nil {
		return nil, err
	}
	if ctr.Record().Infra {
		return nil, errdefs.NotFoundf("container %q not found", idOrPrefix)
	}
	return ctr, nil
}

// stopPodContainers stops every container of the pod (StopPodSandbox),
// all at once, within the caller's deadline: each gets the default grace
// period, shortened to half the time the caller has left, so that the
// SIGKILL and its exit fit in the other half (CRI-O's way). crictl rmp
// gives 2 s, kubelet minutes.
func (c *containerService) stopPodContainers(ctx context.Context, podID string) error {
	grace := stopGrace(ctx, c.stopTimeout(), time.Now())
	return c.eachPodContainer(podID, func(ctr *oci.Container) error {
		return c.mgr.Stop(ctx, ctr, grace)
	})
}

// stopGrace is the grace period a pod stop gives each container: the
// configured default, or half of what is left before ctx's deadline.
func stopGrace(ctx context.Context, def time.Duration, now time.Time) time.Duration {
	deadline, ok := ctx.Deadline()
	if !ok {
		return def
	}
	return max(min(def, deadline.Sub(now)/2), 0)
}

// removePodContainers removes every container of the pod (RemovePodSandbox).
// It first waits for the pod's CreateContainer calls still at work (they
// outlive their callers): a container they made after the removal would
// be left running in a pod that is gone. The pod is NOTREADY by now, so
// no create for it begins any more (see beginCreate).
func (c *containerService) removePodContainers(ctx context.Context, podID string) error {
	if c.mgr == nil {
		return nil
	}
	if err := c.mgr.WaitCreates(ctx, podID); err != nil {
		return err
	}
	return c.eachPodContainer(podID, func(ctr *oci.Container) error {
		return c.mgr.Remove(ctx, ctr)
	})
}

// eachPodContainer runs fn on the pod's CRI containers in parallel.
func (c *containerService) eachPodContainer(podID string, fn func(*oci.Container) error) error {
	if c.mgr == nil {
		return nil
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, ctr := range c.mgr.PodContainers(podID) {
		if ctr.Record().Infra {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := recovered(ctr.ID(), func() error { return fn(ctr) }); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// recovered runs fn on a goroutine of berthd's own (no interceptor above
// it) and turns a panic into an Internal error and a log line, not the end
// of berthd.
func recovered(id string, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errdefs.Recovered(r)
			var pe *errdefs.PanicError
			errors.As(err, &pe)
			logrus.WithField("container", id).Errorf("%v\n%s", err, pe.Stack)
		}
	}()
	return fn()
}

// ociRuntime maps a runtime handler name to its binary and state root.
func (s *Server) ociRuntime(name string) (oci.Runtime, error) {
	handler, h, err := s.Config().Runtime.Handler(name)
	if err != nil {
		return oci.Runtime{}, err
	}
	return oci.Runtime{
		Handler: handler,
		Path:    s.binPath(h.Path, "berth-runner"),
		Root:    h.Root, // filled from the run root by config when unset
		VM:      h.Type == "vm",
	}, nil
}

// ociPod is what a container takes from its pod.
func ociPod(sb *sandbox.Sandbox) *oci.Pod {
	return &oci.Pod{
		ID:             sb.ID,
		Name:           sb.Metadata.Name,
		Namespace:      sb.Metadata.Namespace,
		UID:            sb.Metadata.UID,
		Hostname:       sb.Hostname,
		NetNSPath:      sb.NetNSPath,
		IPCNSPath:      sb.IPCNSPath,
		UTSNSPath:      sb.UTSNSPath,
		PIDNSPath:      sb.PIDNSPath,
		UserNS:         ociUserNS(sb),
		ResolvConfPath: sb.ResolvConfPath,
		HostsPath:      sb.HostsPath,
		HostnamePath:   sb.HostnamePath,
		ShmPath:        sb.ShmPath,
		CgroupParent:   sb.CgroupParent,
		LogDirectory:   sb.Config.GetLogDirectory(),
	}
}

// allowedAnnotations is a runtime handler's allowed_annotations.
func (s *Server) allowedAnnotations(handler string) []string {
	_, h, err := s.Config().Runtime.Handler(handler)
	if err != nil {
		return nil
	}
	return h.AllowedAnnotations
}

// cgroupWritable is a runtime handler's cgroup_writable.
func (s *Server) cgroupWritable(handler string) bool {
	_, h, err := s.Config().Runtime.Handler(handler)
	return err == nil && h.CgroupWritable
}
