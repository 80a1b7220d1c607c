package oci

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/errdefs"
	"github.com/berth-cri/berth/monitor"
)

// UpdateResources applies new cgroup limits to a created or running
// container through the runtime's update, then records them.
func (m *Manager) UpdateResources(ctx context.Context, c *Container, res *runtimeapi.LinuxContainerResources) error {
	lr, err := Resources(res, m.opts.Host)
	if err != nil {
		return err
	}
	c.ops.Lock()
	defer c.ops.Unlock()
	c.mu.Lock()
	id, state, rt := c.rec.ID, c.rec.State, c.rec.Runtime
	c.mu.Unlock()
	if state != StateCreated && state != StateRunning {
		return errdefs.FailedPreconditionf("container %s is %s: only created or running containers can be updated", id, state)
	}
	if err := rt.Update(ctx, id, lr); err != nil {
		return fmt.Errorf("update container %s: %w", id, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rec.Resources = proto.Clone(res).(*runtimeapi.LinuxContainerResources)
	return c.save()
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
	if err := monitor.ReopenLog(ctx, c.paths.control()); err != nil {
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
