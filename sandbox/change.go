package sandbox

// Change is one step in a pod's life, announced through Options.OnChange:
// it became ready, it stopped (NOTREADY), or it was removed.
type Change struct {
	// Sandbox is the pod as the change left it (as it was, if Removed).
	Sandbox *Sandbox
	// Removed: the pod and everything it had are gone.
	Removed bool
}

// announce tells OnChange about a pod's new state; it is called with no
// Manager lock held (the listener may call Get), under the pod's op lock,
// so one pod's changes are heard in order. A pod still being created is
// nobody's business yet: only a pod that was listed is announced.
func (m *Manager) announce(before State, sb *Sandbox, removed bool) {
	if m.opts.OnChange == nil || sb.State == StateCreating {
		return
	}
	if !removed && before == sb.State {
		return
	}
	m.opts.OnChange(Change{Sandbox: sb.Clone(), Removed: removed})
}
