package nrihost

import (
	"context"
	"fmt"

	"github.com/containerd/nri/pkg/api"
	"github.com/sirupsen/logrus"
)

// updateContainers carries out the updates a plugin asks for on its own
// (UpdateContainers), through the same path as UpdateContainerResources.
// It returns the updates that failed and were not marked to ignore.
func (h *Host) updateContainers(ctx context.Context, updates []*api.ContainerUpdate) ([]*api.ContainerUpdate, error) {
	if !h.started.Load() {
		return updates, fmt.Errorf("NRI: berthd is not ready for container updates")
	}
	var failed []*api.ContainerUpdate
	for _, u := range updates {
		if err := h.update(ctx, u); err != nil {
			logrus.WithField("container", u.GetContainerId()).Warnf("NRI: plugin update: %v", err)
			if !u.GetIgnoreFailure() {
				failed = append(failed, u)
			}
		}
	}
	return failed, nil
}

// applyUpdates carries out the updates that came back with an event's
// reply; a failure is logged, as the event itself already happened.
func (h *Host) applyUpdates(ctx context.Context, updates []*api.ContainerUpdate, event string) {
	for _, u := range updates {
		if err := h.update(ctx, u); err != nil && !u.GetIgnoreFailure() {
			logrus.WithField("container", u.GetContainerId()).Warnf("NRI: update asked for in %s: %v", event, err)
		}
	}
}

func (h *Host) update(ctx context.Context, u *api.ContainerUpdate) error {
	if u == nil {
		return nil
	}
	res := u.GetLinux().GetResources()
	if res == nil {
		return nil
	}
	c, err := h.ctrs.Get(u.GetContainerId())
	if err != nil {
		return err
	}
	if c.ID() != u.GetContainerId() {
		return fmt.Errorf("container %q not found (only a prefix of %s)", u.GetContainerId(), c.ID())
	}
	lr := res.ToOCI()
	if err := h.ctrs.UpdateSpecResources(ctx, c, lr); err != nil {
		return err
	}
	h.updated(c.ID(), lr)
	return nil
}
