package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/berth-cri/berth/errdefs"
	"github.com/berth-cri/berth/oci"
	"github.com/berth-cri/berth/sandbox"
	"github.com/berth-cri/berth/storage"
)

// containerService is the container state: an oci.Manager, which does
// the work, and the CreateContainer calls in flight. The RPCs are in
// container_create.go, container_lifecycle.go, container_status.go and
// container_exec.go.
type containerService struct {
	mgr    *oci.Manager
	host   *oci.Host
	rootfs *storage.Store // the image store, which holds root filesystems
	// stopTimeout is the configured runtime.stop_timeout_default.
	stopTimeout func() time.Duration

	mu sync.Mutex
	// creating holds CreateContainer calls by pod, name and attempt:
	// in flight, or finished after their caller gave up (so kubelet's
	// retry gets the container instead of "name is reserved").
	creating map[string]*createFlight
}

// initContainers restores every container from disk (see oci.NewManager),
// then removes what a crash left without an owner: containers whose pod
// is gone and root filesystems no container has.
func (s *Server) initContainers(ctx context.Context) error {
	cfg := s.Config()
	host, err := oci.DetectHost(cfg.Runtime.RestrictOOMScoreAdj)
	if err != nil {
		return err
	}
	store := s.img.store
	mgr, err := oci.NewManager(ctx, oci.Options{
		Root:              cfg.Root,
		RunRoot:           cfg.RunRoot,
		MonitorPath:       s.binPath(cfg.Runtime.MonitorPath, "berth-monitor"),
		Host:              host,
		Rootfs:            store,
		ExecSyncMaxOutput: min(cfg.Runtime.ExecSyncMaxOutput, maxExecOutput),
	})
	if err != nil {
		return err
	}
	s.ctr = containerService{
		mgr: mgr, host: host, rootfs: store,
		stopTimeout: func() time.Duration { return s.Config().Runtime.StopTimeoutDefault.Duration },
		creating:    map[string]*createFlight{},
	}
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
	ids, err := store.ListContainerRootfs()
	if err != nil {
		return err
	}
	for _, id := range ids {
		if !mgr.Known(id) {
			logrus.WithField("container", id).Info("removing a root filesystem no container owns")
			if err := store.RemoveContainerRootfs(id); err != nil {
				logrus.WithField("container", id).Errorf("remove root filesystem: %v", err)
			}
		}
	}
	return nil
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
// all at once, each with the default stop timeout.
func (c *containerService) stopPodContainers(ctx context.Context, podID string) error {
	timeout := c.stopTimeout()
	return c.eachPodContainer(podID, func(ctr *oci.Container) error {
		return c.mgr.Stop(ctx, ctr, timeout)
	})
}

// removePodContainers removes every container of the pod (RemovePodSandbox).
// It first waits for the pod's CreateContainer calls still at work (they
// outlive their callers): a container they made after the removal would
// be left running in a pod that is gone.
func (c *containerService) removePodContainers(ctx context.Context, podID string) error {
	c.mu.Lock()
	var flights []*createFlight
	for key, f := range c.creating {
		if strings.HasPrefix(key, podID+"/") {
			flights = append(flights, f)
		}
	}
	c.mu.Unlock()
	for _, f := range flights {
		select {
		case <-f.done:
		case <-ctx.Done():
			return fmt.Errorf("pod %s: a container is still being created: %w", podID, ctx.Err())
		}
	}
	err := c.eachPodContainer(podID, func(ctr *oci.Container) error {
		return c.mgr.Remove(ctx, ctr)
	})
	c.mu.Lock()
	for key := range c.creating {
		if strings.HasPrefix(key, podID+"/") {
			delete(c.creating, key)
		}
	}
	c.mu.Unlock()
	return err
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
			if err := fn(ctr); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
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
