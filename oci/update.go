package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/errdefs"
	"github.com/berth-cri/berth/monitorclient"
	"github.com/berth-cri/berth/record"
)

// UpdateResources applies new cgroup limits to a created or running
// container through the runtime's update, then records them. The
// notifier (NRI plugins) sees the request first and may change it.
func (m *Manager) UpdateResources(ctx context.Context, c *Container, res *runtimeapi.LinuxContainerResources) error {
	lr, err := Resources(res, m.opts.Host)
	if err != nil {
		return err
	}
	if err := c.checkUpdatable(); err != nil {
		return err
	}
	requested, _ := json.Marshal(lr)
	ch := &Change{Step: StepUpdate, Container: c, Resources: lr}
	if err := m.changing(ctx, ch); err != nil {
		return err
	}
	lr = ch.Resources
	rec := proto.Clone(res).(*runtimeapi.LinuxContainerResources)
	if got, _ := json.Marshal(lr); !bytes.Equal(got, requested) {
		if err := CheckResources(lr, m.opts.Host); err != nil {
			return err
		}
		rec = criResources(lr, res.GetOomScoreAdj())
	}
	if err := m.applyResources(ctx, c, lr, rec); err != nil {
		return err
	}
	m.changed(ctx, c, StepUpdated)
	return nil
}

// UpdateSpecResources applies the limits upd sets, keeping the others,
// the way UpdateResources does: for updates that plugins ask for
// themselves.
func (m *Manager) UpdateSpecResources(ctx context.Context, c *Container, upd *rspec.LinuxResources) error {
	cur := c.Record().Resources
	lr, err := Resources(cur, m.opts.Host)
	if err != nil {
		return err
	}
	lr = MergeResources(lr, upd)
	if err := CheckResources(lr, m.opts.Host); err != nil {
		return err
	}
	return m.applyResources(ctx, c, lr, criResources(lr, cur.GetOomScoreAdj()))
}

// applyResources has the runtime apply lr and records rec as the
// container's resources.
func (m *Manager) applyResources(ctx context.Context, c *Container, lr *rspec.LinuxResources, rec *runtimeapi.LinuxContainerResources) error {
	c.ops.Lock()
	defer c.ops.Unlock()
	if err := c.checkUpdatable(); err != nil {
		return err
	}
	id, rt := c.rec.ID, c.rec.Runtime
	if err := rt.Update(ctx, id, lr); err != nil {
		return fmt.Errorf("update container %s: %w", id, err)
	}
	return c.update(record.Durable, func(st *Status) error {
		st.Resources = rec
		return nil
	})
}

// checkUpdatable refuses containers that are not created or running.
func (c *Container) checkUpdatable() error {
	c.mu.Lock()
	id, state, pending := c.rec.ID, c.rec.State, c.rec.restorePending()
	c.mu.Unlock()
	if state != StateCreated && state != StateRunning {
		return errdefs.FailedPreconditionf("container %s is %s: only created or running containers can be updated", id, state)
	}
	if pending {
		return errdefs.FailedPreconditionf("container %s is not restored yet: update it after StartContainer", id)
	}
	return nil
}

// ReopenLog has the monitor reopen the container's log file (kubelet
// rotated it).
func (m *Manager) ReopenLog(ctx context.Context, c *Container) error {
	c.mu.Lock()
	state, id, logPath := c.rec.State, c.rec.ID, c.rec.LogPath
	c.mu.Unlock()
	if state != StateRunning {
		return errdefs.FailedPreconditionf("container %s is %s, not running", id, state)
	}
	if logPath == "" {
		return nil // no log to reopen
	}
	if err := monitorclient.ReopenLog(ctx, c.paths.control()); err != nil {
		return fmt.Errorf("container %s: %w", id, err)
	}
	return nil
}

// Spec returns the container's OCI spec as written to its bundle, raw.
func (c *Container) Spec() (json.RawMessage, error) {
	b, err := os.ReadFile(c.paths.spec())
	if err != nil {
		return nil, fmt.Errorf("read spec of %s: %w", c.ID(), err)
	}
	return b, nil
}
