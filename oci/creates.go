package oci

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/errdefs"
	"github.com/berth-cri/berth/inflight"
)

// createTimeout bounds one container's creation once it no longer
// depends on its caller (whose deadline may pass first).
const createTimeout = 5 * time.Minute

// createKey names a container in its pod, as kubelet does; a struct, so
// no two names share a key.
type createKey struct {
	podID   string
	name    string
	attempt uint32
}

func (k createKey) String() string {
	return fmt.Sprintf("container %q (attempt %d) in pod %s", k.name, k.attempt, k.podID)
}

// newCreates is the table of Create calls in flight, or finished after
// their caller gave up (so kubelet's retry gets the container instead of
// "name is reserved"): the same rule as the pods'. A retry repeats the
// config.
func newCreates() *inflight.Calls[createKey, *runtimeapi.ContainerConfig] {
	return inflight.New[createKey](func(a, b *runtimeapi.ContainerConfig) bool {
		return proto.Equal(a, b)
	}, createTimeout)
}

// createNames is what the retry table asks of the Manager about a name.
func (m *Manager) createNames(key createKey) inflight.Names {
	return inflight.Names{
		Taken: func() error {
			taken := m.List(func(r *Record) bool {
				return r.PodID == key.podID && r.Name == key.name && r.Attempt == key.attempt
			})
			if len(taken) > 0 {
				return errdefs.AlreadyExistsf("container name %q (attempt %d) is already used in pod %s by container %s", key.name, key.attempt, key.podID, taken[0].ID)
			}
			return nil
		},
		Alive: m.Known,
	}
}

// WaitCreates waits for the pod's Create calls still at work (they
// outlive their callers). RemovePodSandbox waits for them before it
// removes the pod's containers, once no create for the pod can begin any
// more: a container they made afterwards would outlive its pod.
func (m *Manager) WaitCreates(ctx context.Context, podID string) error {
	if err := m.creates.Wait(ctx, func(k createKey) bool { return k.podID == podID }); err != nil {
		return fmt.Errorf("pod %s: %w", podID, err)
	}
	return nil
}
