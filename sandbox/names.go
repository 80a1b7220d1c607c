package sandbox

import (
	"context"
	"fmt"

	"github.com/berth-cri/berth/errdefs"
	"github.com/berth-cri/berth/ids"
)

// reservation holds a pod name key for one pod id: from the start of its
// RunPodSandbox until RemovePodSandbox.
type reservation struct {
	id string
	// done is closed when the RunPodSandbox that made the reservation
	// returns; err is its error, to be read only after done is closed.
	done chan struct{}
	err  error
}

func doneReservation(id string) *reservation {
	r := &reservation{id: id, done: make(chan struct{})}
	close(r.done)
	return r
}

// reserve takes the name key for a new pod. If a pod holds it, that is an
// already-exists error; but if the pod holding it is still being created,
// this is kubelet retrying a RunPodSandbox whose deadline passed: wait for
// the first call and return its pod (the most reported CRI-O and
// containerd complaint is a retry failing with "name is reserved"). If the
// first call fails, the retry makes the pod itself.
func (m *Manager) reserve(ctx context.Context, key string) (*reservation, *Sandbox, error) {
	for {
		m.mu.Lock()
		r, ok := m.names[key]
		if !ok {
			r = &reservation{id: ids.New(), done: make(chan struct{})}
			m.names[key] = r
			m.mu.Unlock()
			return r, nil, nil
		}
		select {
		case <-r.done:
			m.mu.Unlock()
			if r.err != nil {
				continue // failed and already released; look again
			}
			return nil, nil, errdefs.AlreadyExistsf("pod name %s is reserved by pod sandbox %s: remove it first", key, r.id)
		default:
		}
		m.mu.Unlock()

		select {
		case <-r.done:
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("waiting for the RunPodSandbox of %s already in flight: %w", key, ctx.Err())
		}
		if r.err != nil {
			continue
		}
		sb, err := m.Get(r.id)
		if err != nil {
			continue // removed in the meantime
		}
		return nil, sb, nil
	}
}

// finish ends the RunPodSandbox that holds r: on failure the key is
// released, and anyone waiting on it is woken either way.
func (m *Manager) finish(r *reservation, key string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil && m.names[key] == r {
		delete(m.names, key)
	}
	r.err = err
	close(r.done)
}

// release frees the key of a removed pod.
func (m *Manager) releaseLocked(key, id string) {
	if r, ok := m.names[key]; ok && r.id == id {
		delete(m.names, key)
	}
}
