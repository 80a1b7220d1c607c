package oci

import (
	"context"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

// Plugins are told of each step of a CRI container's life and may change
// it: NRI plugins (package nrihost) implement it. The Manager calls them
// in the order the steps happen, never for infra containers, and never
// while it holds the container's locks, so a hook may read the container
// (Record, Spec). Errors from the hooks that return one fail the step
// before anything of it happened.
type Plugins interface {
	// CreateContainer comes before the container exists anywhere but in
	// its "creating" record: the hook may adjust spec. If the create
	// fails afterwards, RemoveContainer follows.
	CreateContainer(ctx context.Context, c *Container, spec *rspec.Spec) error
	// PostCreateContainer comes once the container is created and listed.
	PostCreateContainer(ctx context.Context, c *Container)
	// StartContainer comes before the runtime's start.
	StartContainer(ctx context.Context, c *Container) error
	// PostStartContainer comes once the container runs.
	PostStartContainer(ctx context.Context, c *Container)
	// UpdateContainer comes before new resources are applied; it returns
	// the resources to apply instead (res itself if unchanged).
	UpdateContainer(ctx context.Context, c *Container, res *rspec.LinuxResources) (*rspec.LinuxResources, error)
	// PostUpdateContainer comes once they are applied.
	PostUpdateContainer(ctx context.Context, c *Container)
	// StopContainer comes once the container's exit is recorded, whether
	// it was stopped or exited by itself, and before anyone waiting for
	// the exit (StopContainer, RemoveContainer) is woken.
	StopContainer(ctx context.Context, c *Container)
	// RemoveContainer comes once the container is gone.
	RemoveContainer(ctx context.Context, c *Container)
}

// noPlugins is the Plugins of a Manager given none.
type noPlugins struct{}

func (noPlugins) CreateContainer(context.Context, *Container, *rspec.Spec) error { return nil }
func (noPlugins) PostCreateContainer(context.Context, *Container)                {}
func (noPlugins) StartContainer(context.Context, *Container) error               { return nil }
func (noPlugins) PostStartContainer(context.Context, *Container)                 {}
func (noPlugins) UpdateContainer(_ context.Context, _ *Container, res *rspec.LinuxResources) (*rspec.LinuxResources, error) {
	return res, nil
}
func (noPlugins) PostUpdateContainer(context.Context, *Container) {}
func (noPlugins) StopContainer(context.Context, *Container)       {}
func (noPlugins) RemoveContainer(context.Context, *Container)     {}

// plugins returns the hooks for c: none for an infra container.
func (m *Manager) plugins(c *Container) Plugins {
	if m.opts.Plugins == nil || c.rec.Infra {
		return noPlugins{}
	}
	return m.opts.Plugins
}
