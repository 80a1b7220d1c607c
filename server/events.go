package server

import (
	"sync"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/events"
	"github.com/berth-cri/berth/oci"
	"github.com/berth-cri/berth/sandbox"
)

// eventBuffer is how many events one GetContainerEvents subscriber may
// fall behind before its stream ends (and kubelet relists). kubelet reads
// as they come; a burst of pod churn on a full node stays well below it.
const eventBuffer = 1024

// containerEvents are the CRI container events, converted once when the
// change happens and fanned out to every GetContainerEvents stream.
type containerEvents = events.Broker[*runtimeapi.ContainerEventResponse]

// GetContainerEvents streams CREATED, STARTED, STOPPED and DELETED events
// of containers and pods (a pod's events carry its id as container_id,
// as kubelet's evented PLEG expects), each with the pod's status and its
// containers' statuses as the change left them. A stream that falls
// behind by eventBuffer events ends with ResourceExhausted.
func (s *Server) GetContainerEvents(req *runtimeapi.GetEventsRequest, stream grpc.ServerStreamingServer[runtimeapi.ContainerEventResponse]) error {
	sub := s.events.Subscribe()
	defer sub.Close()
	// The headers tell the client it is subscribed: every change from
	// now on reaches it (berthctl events waits for them before saying
	// it follows).
	if err := stream.SendHeader(nil); err != nil {
		return err
	}
	ctx := stream.Context()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-sub.Events():
			if !ok {
				return sub.Err()
			}
			if err := stream.Send(ev); err != nil {
				return err
			}
		}
	}
}

// heldChanges keeps container changes made while berthd starts, before
// the pods they belong to are restored (containers come back first).
type heldChanges struct {
	mu      sync.Mutex
	open    bool
	changes []oci.Change
}

// containerChanged is oci's OnChange: one event per container change.
func (s *Server) containerChanged(ch oci.Change) {
	s.held.mu.Lock()
	if !s.held.open {
		s.held.changes = append(s.held.changes, ch)
		s.held.mu.Unlock()
		return
	}
	s.held.mu.Unlock()
	s.publishContainerChange(ch)
}

// releaseContainerChanges publishes the held changes, in order, and
// lets later ones through.
func (s *Server) releaseContainerChanges() {
	s.held.mu.Lock()
	defer s.held.mu.Unlock()
	for _, ch := range s.held.changes {
		s.publishContainerChange(ch)
	}
	s.held.changes, s.held.open = nil, true
}

func (s *Server) publishContainerChange(ch oci.Change) {
	if ch.Removed {
		s.forgetStats(ch.Container.ID)
	}
	typ := runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT
	if !ch.Removed {
		switch ch.Container.State {
		case oci.StateCreated:
			typ = runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT
		case oci.StateRunning:
			typ = runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT
		case oci.StateExited:
			typ = runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT
		default:
			return
		}
	}
	ev := &runtimeapi.ContainerEventResponse{
		ContainerId:        ch.Container.ID,
		ContainerEventType: typ,
		CreatedAt:          time.Now().UnixNano(),
	}
	if sb, err := s.pod.mgr.Get(ch.Container.PodID); err == nil {
		ev.PodSandboxStatus = podStatus(sb)
	}
	for i := range ch.Pod {
		ev.ContainersStatuses = append(ev.ContainersStatuses, containerStatus(&ch.Pod[i], ch.Pod[i].User))
	}
	s.events.Publish(ev)
}

// podChanged is sandbox's OnChange: a pod that became ready was created
// and started; one removed without a stop is stopped, then deleted.
func (s *Server) podChanged(ch sandbox.Change) {
	sb := ch.Sandbox
	if ch.Removed {
		s.forgetStats(sb.ID)
	}
	var types []runtimeapi.ContainerEventType
	switch {
	case ch.Removed && sb.State == sandbox.StateReady:
		types = append(types, runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT, runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT)
	case ch.Removed:
		types = append(types, runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT)
	case sb.State == sandbox.StateReady:
		types = append(types, runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT, runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT)
	default:
		types = append(types, runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT)
	}
	st := podStatus(sb)
	var ctrs []*runtimeapi.ContainerStatus
	// The container manager is made first (server.New), so a pod's
	// event carries its containers even at restore; the check keeps a
	// pod event safe should that order change.
	if s.ctr.mgr != nil {
		for _, r := range s.ctr.mgr.List(func(r *oci.Record) bool { return r.PodID == sb.ID }) {
			ctrs = append(ctrs, containerStatus(&r, r.User))
		}
	}
	for _, typ := range types {
		s.events.Publish(&runtimeapi.ContainerEventResponse{
			ContainerId:        sb.ID,
			ContainerEventType: typ,
			CreatedAt:          time.Now().UnixNano(),
			PodSandboxStatus:   st,
			ContainersStatuses: ctrs,
		})
	}
}
