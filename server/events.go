package server

import (
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

// publishContainerEvent publishes the CRI event of a container's step,
// with the pod's status and its containers' as the step left them.
func (s *Server) publishContainerEvent(ch oci.Change) {
	var typ runtimeapi.ContainerEventType
	switch ch.Step {
	case oci.StepCreated:
		typ = runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT
	case oci.StepStarted:
		typ = runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT
	case oci.StepExited:
		typ = runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT
	case oci.StepRemoved:
		typ = runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT
		s.forgetStats(ch.Container.ID())
	default:
		return
	}
	podID := ch.Container.Record().PodID
	ev := &runtimeapi.ContainerEventResponse{
		ContainerId:        ch.Container.ID(),
		ContainerEventType: typ,
		CreatedAt:          time.Now().UnixNano(),
	}
	if sb, err := s.pod.get(podID); err == nil {
		ev.PodSandboxStatus = podStatus(sb)
	}
	ev.ContainersStatuses = s.podContainerStatuses(podID)
	s.events.Publish(ev)
}

// publishPodEvents publishes the CRI events of a pod's step: a pod that
// became ready was created and started; one removed without a stop is
// stopped, then deleted. A pod never listed has none.
func (s *Server) publishPodEvents(ch sandbox.Change) {
	sb := ch.Sandbox
	var types []runtimeapi.ContainerEventType
	switch {
	case ch.Step == sandbox.StepReady:
		types = append(types, runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT, runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT)
	case ch.Step == sandbox.StepNotReady:
		types = append(types, runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT)
	case ch.Step != sandbox.StepRemoved || sb.State == sandbox.StateCreating:
		return
	case sb.State == sandbox.StateReady:
		types = append(types, runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT, runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT)
	default:
		types = append(types, runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT)
	}
	if ch.Step == sandbox.StepRemoved {
		s.forgetStats(sb.ID)
	}
	st := podStatus(sb)
	ctrs := s.podContainerStatuses(sb.ID)
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

// podContainerStatuses are the statuses of the pod's CRI containers now.
// The container manager is made first (server.New), so pods restoring
// have it; the check keeps an event safe should that order change.
func (s *Server) podContainerStatuses(podID string) []*runtimeapi.ContainerStatus {
	if s.ctr.mgr == nil {
		return nil
	}
	var out []*runtimeapi.ContainerStatus
	for _, r := range s.ctr.mgr.List(func(r *oci.Record) bool { return r.PodID == podID }) {
		out = append(out, containerStatus(&r, r.User))
	}
	return out
}
