package sandbox

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/errdefs"
	"github.com/berth-cri/berth/inflight"
)

// String names the pod in messages. The key itself is the whole struct,
// never a joined string: names, namespaces and uids may contain any
// separator, and two pods must not share a key.
func (m Metadata) String() string {
	return fmt.Sprintf("pod %q in namespace %q (uid %q, attempt %d)", m.Name, m.Namespace, m.UID, m.Attempt)
}

// podRequest is what makes two RunPodSandbox calls one: a retry repeats
// the config and the handler.
type podRequest struct {
	cfg     *runtimeapi.PodSandboxConfig
	handler string
}

func newCreates() *inflight.Calls[Metadata, podRequest] {
	return inflight.New[Metadata](func(a, b podRequest) bool {
		return a.handler == b.handler && proto.Equal(a.cfg, b.cfg)
	}, createTimeout)
}

// names is what the retry table asks of the Manager about a name.
func (m *Manager) namesFor(md Metadata) inflight.Names {
	return inflight.Names{
		Taken: func() error {
			m.mu.Lock()
			defer m.mu.Unlock()
			if id, ok := m.names[md]; ok {
				return errdefs.AlreadyExistsf("%s is reserved by pod sandbox %s: remove it first", md, id)
			}
			return nil
		},
		Alive: func(id string) bool {
			_, err := m.Get(id)
			return err == nil
		},
	}
}

// releaseLocked frees the name of a removed pod.
func (m *Manager) releaseLocked(md Metadata, id string) {
	if m.names[md] == id {
		delete(m.names, md)
	}
}
