package server

import (
	"context"

	"github.com/berth-cri/berth/oci"
	"github.com/berth-cri/berth/sandbox"
)

// The managers tell every step of a container's or a pod's life to one
// notifier each; these are server's. Each step reaches NRI plugins (if
// [nri] enable) and the CRI event stream from the same call. The event
// goes first: publishing never blocks, while a plugin may take its whole
// request timeout.

// containerNotifier is oci's Notifier.
type containerNotifier struct{ s *Server }

// Changing lets NRI plugins refuse or adjust a step before it happens.
func (n containerNotifier) Changing(ctx context.Context, ch *oci.Change) error {
	h := n.s.nri
	if h == nil {
		return nil
	}
	switch ch.Step {
	case oci.StepCreate:
		if err := h.CreateContainer(ctx, ch.Container, ch.Spec); err != nil {
			return err
		}
		ch.Adjusted = true
	case oci.StepStart:
		return h.StartContainer(ctx, ch.Container)
	case oci.StepUpdate:
		res, err := h.UpdateContainer(ctx, ch.Container, ch.Resources)
		if err != nil {
			return err
		}
		ch.Resources = res
	}
	return nil
}

// Changed publishes the step's CRI event and tells NRI plugins.
func (n containerNotifier) Changed(ctx context.Context, ch oci.Change) {
	n.s.publishContainerEvent(ch)
	h := n.s.nri
	if h == nil {
		return
	}
	switch ch.Step {
	case oci.StepCreated:
		h.PostCreateContainer(ctx, ch.Container)
	case oci.StepStarted:
		h.PostStartContainer(ctx, ch.Container)
	case oci.StepUpdated:
		h.PostUpdateContainer(ctx, ch.Container)
	case oci.StepExited:
		h.StopContainer(ctx, ch.Container)
	case oci.StepRemoved, oci.StepCreateFailed:
		h.RemoveContainer(ctx, ch.Container)
	}
}

// podNotifier is sandbox's Notifier.
type podNotifier struct{ s *Server }

// Changing lets NRI plugins refuse a pod's run or stop.
func (n podNotifier) Changing(ctx context.Context, ch *sandbox.Change) error {
	h := n.s.nri
	if h == nil {
		return nil
	}
	switch ch.Step {
	case sandbox.StepRun:
		return h.RunPodSandbox(ctx, ch.Sandbox)
	case sandbox.StepStop:
		return h.StopPodSandbox(ctx, ch.Sandbox)
	}
	return nil
}

// Changed publishes the step's CRI events and tells NRI plugins.
func (n podNotifier) Changed(ctx context.Context, ch sandbox.Change) {
	n.s.publishPodEvents(ch)
	h := n.s.nri
	if h == nil {
		return
	}
	switch ch.Step {
	case sandbox.StepRemoved, sandbox.StepRunFailed:
		h.RemovePodSandbox(ctx, ch.Sandbox)
	}
}
