package nrihost

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/containerd/nri/pkg/api"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"

	"github.com/berth-cri/berth/oci"
)

// CreateContainer has plugins adjust the spec of a container about to be
// created, then applies the updates they ask for other containers.
func (h *Host) CreateContainer(ctx context.Context, c *oci.Container, spec *rspec.Spec) error {
	if !h.started.Load() {
		return nil
	}
	rec := c.Record()
	req := &api.CreateContainerRequest{Pod: h.pod(rec.PodID), Container: h.container(rec, spec)}
	rpl, err := h.nri.CreateContainer(ctx, req)
	if err == nil {
		if err = h.adjust(spec, rpl.GetAdjust()); err != nil {
			err = fmt.Errorf("adjust: %w", err)
		}
	}
	if err != nil {
		// Plugins before the one that failed saw the container: they
		// hear it is gone, as after any failed create.
		undo := &api.RemoveContainerRequest{Pod: req.Pod, Container: req.Container}
		if uerr := h.nri.RemoveContainer(context.WithoutCancel(ctx), undo); uerr != nil {
			logrus.WithField("container", rec.ID).Warnf("NRI: RemoveContainer after a refused create: %v", uerr)
		}
		return fmt.Errorf("NRI: CreateContainer of %s in pod %s: %w", rec.Name, rec.PodID, err)
	}
	h.remember(rec.ID, cloneSpec(spec))
	h.applyUpdates(ctx, rpl.GetUpdate(), "CreateContainer")
	return nil
}

// PostCreateContainer tells plugins the container is created.
func (h *Host) PostCreateContainer(ctx context.Context, c *oci.Container) {
	h.notify(ctx, c, "PostCreateContainer", func(pod *api.PodSandbox, ctr *api.Container) error {
		return h.nri.PostCreateContainer(ctx, &api.PostCreateContainerRequest{Pod: pod, Container: ctr})
	})
}

// StartContainer tells plugins the container is about to start; an error
// keeps it from starting.
func (h *Host) StartContainer(ctx context.Context, c *oci.Container) error {
	if !h.started.Load() {
		return nil
	}
	rec := c.Record()
	pod, ctr := h.pod(rec.PodID), h.container(rec, h.spec(c, rec))
	if err := h.nri.StartContainer(ctx, &api.StartContainerRequest{Pod: pod, Container: ctr}); err != nil {
		return fmt.Errorf("NRI: StartContainer of %s: %w", rec.ID, err)
	}
	return nil
}

// PostStartContainer tells plugins the container runs.
func (h *Host) PostStartContainer(ctx context.Context, c *oci.Container) {
	h.notify(ctx, c, "PostStartContainer", func(pod *api.PodSandbox, ctr *api.Container) error {
		return h.nri.PostStartContainer(ctx, &api.PostStartContainerRequest{Pod: pod, Container: ctr})
	})
}

// UpdateContainer lets plugins change the resources a container is about
// to get, and applies the updates they ask for other containers.
func (h *Host) UpdateContainer(ctx context.Context, c *oci.Container, res *rspec.LinuxResources) (*rspec.LinuxResources, error) {
	if !h.started.Load() {
		return res, nil
	}
	rec := c.Record()
	req := &api.UpdateContainerRequest{
		Pod:            h.pod(rec.PodID),
		Container:      h.container(rec, h.spec(c, rec)),
		LinuxResources: api.FromOCILinuxResources(res, nil),
	}
	rpl, err := h.nri.UpdateContainer(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("NRI: UpdateContainer of %s: %w", rec.ID, err)
	}
	var others []*api.ContainerUpdate
	for _, u := range rpl.GetUpdate() {
		switch {
		case u == nil:
		case u.GetContainerId() == rec.ID:
			if r := u.GetLinux().GetResources(); r != nil {
				res = oci.MergeResources(res, r.ToOCI())
			}
		default:
			others = append(others, u)
		}
	}
	h.mu.Lock()
	h.pending[rec.ID] = res
	h.mu.Unlock()
	h.applyUpdates(ctx, others, "UpdateContainer")
	return res, nil
}

// PostUpdateContainer records the resources applied and tells plugins.
func (h *Host) PostUpdateContainer(ctx context.Context, c *oci.Container) {
	h.mu.Lock()
	res, ok := h.pending[c.ID()]
	delete(h.pending, c.ID())
	h.mu.Unlock()
	if ok {
		h.updated(c.ID(), res)
	}
	h.notify(ctx, c, "PostUpdateContainer", func(pod *api.PodSandbox, ctr *api.Container) error {
		return h.nri.PostUpdateContainer(ctx, &api.PostUpdateContainerRequest{Pod: pod, Container: ctr})
	})
}

// StopContainer tells plugins the container stopped and applies the
// updates they ask for the containers left.
func (h *Host) StopContainer(ctx context.Context, c *oci.Container) {
	if !h.started.Load() {
		return
	}
	rec := c.Record()
	req := &api.StopContainerRequest{Pod: h.pod(rec.PodID), Container: h.container(rec, h.spec(c, rec))}
	rpl, err := h.nri.StopContainer(ctx, req)
	if err != nil {
		logrus.WithField("container", rec.ID).Warnf("NRI: StopContainer: %v", err)
		return
	}
	h.applyUpdates(ctx, rpl.GetUpdate(), "StopContainer")
}

// RemoveContainer tells plugins the container is gone.
func (h *Host) RemoveContainer(ctx context.Context, c *oci.Container) {
	h.notify(ctx, c, "RemoveContainer", func(pod *api.PodSandbox, ctr *api.Container) error {
		return h.nri.RemoveContainer(ctx, &api.RemoveContainerRequest{Pod: pod, Container: ctr})
	})
	h.mu.Lock()
	delete(h.specs, c.ID())
	delete(h.pending, c.ID())
	h.mu.Unlock()
}

// notify sends an event that cannot fail the step it follows: an error
// is only logged.
func (h *Host) notify(ctx context.Context, c *oci.Container, event string, send func(*api.PodSandbox, *api.Container) error) {
	if !h.started.Load() {
		return
	}
	rec := c.Record()
	if err := send(h.pod(rec.PodID), h.container(rec, h.spec(c, rec))); err != nil {
		logrus.WithField("container", rec.ID).Warnf("NRI: %s: %v", event, err)
	}
}

// spec returns the container's spec as plugins last saw it, reading the
// bundle the first time (containers from before berthd started), with
// the resources its record says it has now.
func (h *Host) spec(c *oci.Container, rec oci.Record) *rspec.Spec {
	h.mu.Lock()
	s := h.specs[rec.ID]
	h.mu.Unlock()
	if s != nil {
		return s
	}
	s = &rspec.Spec{}
	raw, err := c.Spec()
	if err == nil {
		err = json.Unmarshal(raw, s)
	}
	if err != nil {
		// Exited containers lose their bundle's run dir on reboot; the
		// record alone still says who they are.
		logrus.WithField("container", rec.ID).Debugf("NRI: container spec: %v", err)
		s = &rspec.Spec{}
	}
	if rec.Resources != nil {
		if lr, err := oci.Resources(rec.Resources, h.node); err == nil {
			if s.Linux == nil {
				s.Linux = &rspec.Linux{}
			}
			s.Linux.Resources = oci.MergeResources(orEmpty(s.Linux.Resources), lr)
		}
	}
	h.mu.Lock()
	if cur := h.specs[rec.ID]; cur != nil {
		s = cur
	} else {
		h.specs[rec.ID] = s
	}
	h.mu.Unlock()
	return s
}

// remember keeps s as the container's spec. Specs kept are never
// changed, only replaced, so an event may read one without the lock.
func (h *Host) remember(id string, s *rspec.Spec) {
	h.mu.Lock()
	h.specs[id] = s
	h.mu.Unlock()
}

// updated records that the container's resources changed by upd.
func (h *Host) updated(id string, upd *rspec.LinuxResources) {
	h.mu.Lock()
	defer h.mu.Unlock()
	old := h.specs[id]
	if old == nil {
		return // read from the bundle and record when next needed
	}
	s := *old
	l := rspec.Linux{}
	if s.Linux != nil {
		l = *s.Linux
	}
	l.Resources = oci.MergeResources(orEmpty(l.Resources), upd)
	s.Linux = &l
	h.specs[id] = &s
}

// cloneSpec is a deep copy, through JSON as the spec is written anyway.
func cloneSpec(s *rspec.Spec) *rspec.Spec {
	b, err := json.Marshal(s)
	out := &rspec.Spec{}
	if err == nil {
		err = json.Unmarshal(b, out)
	}
	if err != nil {
		return &rspec.Spec{}
	}
	return out
}

func orEmpty(lr *rspec.LinuxResources) *rspec.LinuxResources {
	if lr == nil {
		return &rspec.LinuxResources{}
	}
	return lr
}

// container converts a container's record and spec to NRI's Container.
func (h *Host) container(rec oci.Record, s *rspec.Spec) *api.Container {
	ctr := &api.Container{
		Id:            rec.ID,
		PodSandboxId:  rec.PodID,
		Name:          rec.Name,
		State:         containerState(rec.State),
		Labels:        maps.Clone(rec.Labels),
		Annotations:   maps.Clone(rec.Annotations),
		Pid:           uint32(max(rec.PID, 0)),
		CreatedAt:     rec.CreatedAt.UnixNano(),
		ExitCode:      rec.ExitCode,
		StatusReason:  rec.Reason,
		StatusMessage: rec.Message,
		Image:         &api.Image{Name: rec.Image},
	}
	if !rec.StartedAt.IsZero() {
		ctr.StartedAt = rec.StartedAt.UnixNano()
	}
	if !rec.FinishedAt.IsZero() {
		ctr.FinishedAt = rec.FinishedAt.UnixNano()
	}
	if s == nil {
		return ctr
	}
	if len(s.Annotations) > 0 {
		ctr.Annotations = maps.Clone(s.Annotations)
	}
	ctr.Mounts = api.FromOCIMounts(s.Mounts)
	ctr.Hooks = api.FromOCIHooks(s.Hooks)
	if p := s.Process; p != nil {
		ctr.Args = slices.Clone(p.Args)
		ctr.Env = slices.Clone(p.Env)
		for _, l := range p.Rlimits {
			ctr.Rlimits = append(ctr.Rlimits, &api.POSIXRlimit{Type: l.Type, Hard: l.Hard, Soft: l.Soft})
		}
		ctr.User = &api.User{Uid: p.User.UID, Gid: p.User.GID, AdditionalGids: slices.Clone(p.User.AdditionalGids)}
	}
	if l := s.Linux; l != nil {
		ctr.Linux = &api.LinuxContainer{
			Namespaces:  api.FromOCILinuxNamespaces(l.Namespaces),
			Devices:     api.FromOCILinuxDevices(l.Devices),
			Resources:   api.FromOCILinuxResources(l.Resources, nil),
			CgroupsPath: l.CgroupsPath,
			Sysctl:      maps.Clone(l.Sysctl),
		}
		if s.Process != nil {
			if s.Process.OOMScoreAdj != nil {
				ctr.Linux.OomScoreAdj = api.Int(*s.Process.OOMScoreAdj)
			}
			ctr.Linux.IoPriority = api.FromOCILinuxIOPriority(s.Process.IOPriority)
		}
	}
	return ctr
}

func containerState(s oci.State) api.ContainerState {
	switch s {
	case oci.StateCreating, oci.StateCreated:
		return api.ContainerState_CONTAINER_CREATED
	case oci.StateRunning:
		return api.ContainerState_CONTAINER_RUNNING
	case oci.StateExited:
		return api.ContainerState_CONTAINER_STOPPED
	}
	return api.ContainerState_CONTAINER_UNKNOWN
}
