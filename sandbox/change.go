package sandbox

import "context"

// Step is one step in a pod's life.
type Step int

const (
	// Steps about to happen, told to Notifier.Changing, which may refuse
	// them.

	// StepRun: the pod's namespaces, network and files are set up, its
	// infra process not started; it is neither ready nor listed. A
	// refusal fails RunPodSandbox: the pod is torn down.
	StepRun Step = iota + 1
	// StepStop: the pod is stopped or removed (its containers already
	// are), before its network and namespaces go; told once a pod. A
	// refusal fails the call and leaves the pod as it is.
	StepStop

	// Steps done and recorded, told to Notifier.Changed.

	// StepReady: the pod is ready and listed.
	StepReady
	// StepNotReady: the pod is NOTREADY: stopped, its infra exited, or
	// found dead at start.
	StepNotReady
	// StepRemoved: the pod and everything it had are gone.
	StepRemoved
	// StepRunFailed: a pod told as StepRun failed before it was ready;
	// it is gone, never having been listed.
	StepRunFailed
)

var stepNames = map[Step]string{
	StepRun: "run", StepStop: "stop", StepReady: "ready", StepNotReady: "not ready",
	StepRemoved: "removed", StepRunFailed: "run failed",
}

func (s Step) String() string { return stepNames[s] }

// Change is one step of one pod, as its Notifier hears it.
type Change struct {
	Step Step
	// Sandbox is a copy of the pod as the step left it (as it was, for
	// StepRemoved and StepRunFailed).
	Sandbox *Sandbox
}

// Notifier hears of every step of every pod, in the order the steps
// happen: under the pod's op lock (or, at start, before anything else
// reaches the pod), so one pod's steps are heard in order, and with no
// Manager lock held (it may call Get). server implements it: each step
// reaches NRI plugins and the CRI event stream from the same call.
type Notifier interface {
	// Changing is told of a step about to happen (StepRun, StepStop); an
	// error refuses it.
	Changing(ctx context.Context, ch *Change) error
	// Changed is told of a step once it is recorded and published to Get
	// and List.
	Changed(ctx context.Context, ch Change)
}

// changing tells the notifier of a step about to happen to sb.
func (m *Manager) changing(ctx context.Context, step Step, sb *Sandbox) error {
	if m.opts.Notifier == nil {
		return nil
	}
	return m.opts.Notifier.Changing(ctx, &Change{Step: step, Sandbox: sb.Clone()})
}

// changed tells the notifier of a step sb took.
func (m *Manager) changed(ctx context.Context, step Step, sb *Sandbox) {
	if m.opts.Notifier == nil {
		return
	}
	m.opts.Notifier.Changed(ctx, Change{Step: step, Sandbox: sb.Clone()})
}

// stateChanged tells the notifier of a pod whose State went from before
// to sb's. A pod still being created is nobody's business yet: only a
// pod that was listed is told.
func (m *Manager) stateChanged(ctx context.Context, before State, sb *Sandbox) {
	switch {
	case before == sb.State:
	case sb.State == StateReady:
		m.changed(ctx, StepReady, sb)
	case sb.State == StateNotReady:
		m.changed(ctx, StepNotReady, sb)
	}
}
