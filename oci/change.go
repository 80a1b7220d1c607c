package oci

import (
	"context"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
)

// Step is one step in a CRI container's life. Infra containers have
// none: they are the pod's, and the pod announces its own steps.
type Step int

const (
	// Steps about to happen, told to Notifier.Changing, which may refuse
	// them before anything of them happened.

	// StepCreate: the spec is generated and the record says "creating";
	// nothing of the container runs. Change.Spec may be adjusted.
	StepCreate Step = iota + 1
	// StepStart: before the runtime's start.
	StepStart
	// StepUpdate: before new resources are applied. Change.Resources
	// may be replaced.
	StepUpdate

	// Steps done and recorded, told to Notifier.Changed.

	// StepCreated: the runtime created the container; it is listed.
	StepCreated
	// StepStarted: the container runs.
	StepStarted
	// StepUpdated: the resources of StepUpdate are applied.
	StepUpdated
	// StepExited: the container's exit is recorded (stopped, or exited by
	// itself), told before anyone waiting on Exited is woken.
	StepExited
	// StepRemoved: the container and all it had are gone.
	StepRemoved
	// StepCreateFailed: a create told as StepCreate failed; the
	// container is gone without ever having been listed.
	StepCreateFailed
)

var stepNames = map[Step]string{
	StepCreate: "create", StepStart: "start", StepUpdate: "update",
	StepCreated: "created", StepStarted: "started", StepUpdated: "updated",
	StepExited: "exited", StepRemoved: "removed", StepCreateFailed: "create failed",
}

func (s Step) String() string { return stepNames[s] }

// Change is one step of one container, as its Notifier hears it.
type Change struct {
	Step      Step
	Container *Container
	// Spec is, for StepCreate, the spec the runtime will get: the
	// notifier may change it, and then sets Adjusted, so that the record
	// keeps the resources the spec ends up with.
	Spec     *rspec.Spec
	Adjusted bool
	// Resources are, for StepUpdate, the limits about to be applied: the
	// notifier may replace them.
	Resources *rspec.LinuxResources
}

// Notifier hears of every step of every CRI container, from the
// goroutine that takes it (an RPC, or the exit watcher), in the order
// the steps happen, and never while the Manager holds the container's
// record lock, so it may read the container (Record, Spec). One
// container's steps are told in order: Created before Started before
// Exited before Removed. server implements it: each step reaches NRI
// plugins and the CRI event stream from the same call.
type Notifier interface {
	// Changing is told of a step about to happen (StepCreate,
	// StepStart, StepUpdate); an error fails the step before anything of
	// it happened. A StepCreate that succeeded is followed by
	// StepCreated or StepCreateFailed.
	Changing(ctx context.Context, ch *Change) error
	// Changed is told of a step once it is recorded and published to
	// List and Get. It cannot fail the step.
	Changed(ctx context.Context, ch Change)
}

// changing tells the notifier of a step about to happen to c.
func (m *Manager) changing(ctx context.Context, ch *Change) error {
	if m.opts.Notifier == nil || ch.Container.rec.Infra {
		return nil
	}
	return m.opts.Notifier.Changing(ctx, ch)
}

// changed tells the notifier of a step c took, once it is recorded. The
// caller holds no lock of c's record.
func (m *Manager) changed(ctx context.Context, c *Container, step Step) {
	if m.opts.Notifier == nil || c.rec.Infra {
		return
	}
	m.opts.Notifier.Changed(ctx, Change{Step: step, Container: c})
}
