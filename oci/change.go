package oci

// Change is one step in a CRI container's life, announced through
// Options.OnChange once it is recorded. Infra containers announce nothing:
// they are the pod's, and the pod announces its own changes.
type Change struct {
	// Container is the record as the change left it; its State says
	// which change it was (created, running, exited), unless Removed.
	Container Record
	// Removed: the container and all it had are gone.
	Removed bool
	// Pod are the records of every CRI container of the same pod after
	// the change (the removed one no longer among them), so a listener
	// can report the pod's whole state as of this change.
	Pod []Record
}

// changed announces c's current state (or its removal). It is the one
// place a container's change leaves the package, called once the change
// is saved and published to List, with no lock of c held. Changes made
// while the manager restores are held until every container is back, so
// Pod is complete.
func (m *Manager) changed(c *Container, removed bool) {
	if m.opts.OnChange == nil {
		return
	}
	rec := c.Record()
	if rec.Infra {
		return
	}
	ch := Change{Container: rec, Removed: removed}
	m.mu.Lock()
	if m.restoring {
		m.pending = append(m.pending, ch)
		m.mu.Unlock()
		return
	}
	m.mu.Unlock()
	m.announce(ch)
}

func (m *Manager) announce(ch Change) {
	for _, c := range m.PodContainers(ch.Container.PodID) {
		if r := c.Record(); !r.Infra {
			ch.Pod = append(ch.Pod, r)
		}
	}
	m.opts.OnChange(ch)
}

// restored announces the changes held while restoring, in order.
func (m *Manager) restored() {
	m.mu.Lock()
	pending := m.pending
	m.pending, m.restoring = nil, false
	m.mu.Unlock()
	if m.opts.OnChange == nil {
		return
	}
	for _, ch := range pending {
		m.announce(ch)
	}
}
