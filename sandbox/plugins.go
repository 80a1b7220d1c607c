package sandbox

import "context"

// Plugins are told of each step of a pod's life: NRI plugins (package
// nrihost) implement it. They get copies of the pod.
type Plugins interface {
	// RunPodSandbox comes once the pod's namespaces, network and files
	// are set up, before its infra process starts and before it is ready
	// or listed. An error fails RunPodSandbox: the pod is torn down.
	RunPodSandbox(ctx context.Context, sb *Sandbox) error
	// StopPodSandbox comes when a ready pod is stopped (its containers
	// and infra already are), before its network and namespaces go. An
	// error fails StopPodSandbox and leaves the pod as it was.
	StopPodSandbox(ctx context.Context, sb *Sandbox) error
	// RemovePodSandbox comes once the pod is gone, or when a pod that
	// plugins saw in RunPodSandbox failed to start.
	RemovePodSandbox(ctx context.Context, sb *Sandbox)
}

type noPlugins struct{}

func (noPlugins) RunPodSandbox(context.Context, *Sandbox) error  { return nil }
func (noPlugins) StopPodSandbox(context.Context, *Sandbox) error { return nil }
func (noPlugins) RemovePodSandbox(context.Context, *Sandbox)     {}

func (m *Manager) plugins() Plugins {
	if m.opts.Plugins == nil {
		return noPlugins{}
	}
	return m.opts.Plugins
}
