package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// eventStream follows GetContainerEvents until the test ends.
type eventStream struct {
	ch   chan *runtimeapi.ContainerEventResponse
	errs chan error
}

func (e *ctrEnv) followEvents(t *testing.T) *eventStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, err := e.d.Runtime.GetContainerEvents(ctx, &runtimeapi.GetEventsRequest{})
	if err != nil {
		t.Fatalf("GetContainerEvents: %v", err)
	}
	s := &eventStream{ch: make(chan *runtimeapi.ContainerEventResponse, 1000), errs: make(chan error, 1)}
	go func() {
		for {
			ev, err := st.Recv()
			if err != nil {
				s.errs <- err
				return
			}
			s.ch <- ev
		}
	}()
	return s
}

// next returns the next event about one of ids, skipping others.
func (s *eventStream) next(t *testing.T, ids ...string) *runtimeapi.ContainerEventResponse {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case ev := <-s.ch:
			for _, id := range ids {
				if ev.ContainerId == id {
					return ev
				}
			}
		case err := <-s.errs:
			t.Fatalf("event stream ended: %v", err)
		case <-timeout:
			t.Fatalf("no event about %v within a minute", ids)
		}
	}
}

type wantEvent struct {
	id  string
	typ runtimeapi.ContainerEventType
}

func (w wantEvent) String() string { return fmt.Sprintf("%.12s %v", w.id, w.typ) }

// A pod's whole life arrives in order, each event with the pod's status
// and its containers' as the change left them.
func TestContainerEventsPodLife(t *testing.T) {
	e := startContainerEnv(t)
	s := e.followEvents(t)
	pod := e.pod(t, statsHandler(t), runtimeapi.NamespaceMode_CONTAINER)
	ctr := e.run(t, pod, e.config("once", "sh", "-c", "exit 7"))
	e.waitExit(t, ctr)
	ctx := e.d.Ctx(t)
	if _, err := e.d.Runtime.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: ctr}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatal(err)
	}
	const (
		created = runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT
		started = runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT
		stopped = runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT
		deleted = runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT
	)
	want := []wantEvent{
		{pod, created}, {pod, started},
		{ctr, created}, {ctr, started}, {ctr, stopped}, {ctr, deleted},
		{pod, stopped}, {pod, deleted},
	}
	var last int64
	for i, w := range want {
		ev := s.next(t, pod, ctr)
		if ev.ContainerId != w.id || ev.ContainerEventType != w.typ {
			t.Fatalf("event %d: %.12s %v, want %v", i, ev.ContainerId, ev.ContainerEventType, w)
		}
		if ev.CreatedAt < last {
			t.Errorf("event %d (%v) is older than the one before", i, w)
		}
		last = ev.CreatedAt
		if ev.PodSandboxStatus.GetId() != pod || ev.PodSandboxStatus.GetMetadata().GetUid() == "" {
			t.Errorf("event %v: pod status %v", w, ev.PodSandboxStatus)
		}
		switch {
		case w.id == ctr && w.typ == deleted, w.id == pod && w.typ != stopped && w.typ != deleted:
			if len(ev.ContainersStatuses) != 0 {
				t.Errorf("event %v: %d container statuses, want none", w, len(ev.ContainersStatuses))
			}
		case w.id == ctr:
			if len(ev.ContainersStatuses) != 1 || ev.ContainersStatuses[0].Id != ctr {
				t.Fatalf("event %v: container statuses %v", w, ev.ContainersStatuses)
			}
			cs := ev.ContainersStatuses[0]
			wantState := map[runtimeapi.ContainerEventType]runtimeapi.ContainerState{
				created: runtimeapi.ContainerState_CONTAINER_CREATED,
				started: runtimeapi.ContainerState_CONTAINER_RUNNING,
				stopped: runtimeapi.ContainerState_CONTAINER_EXITED,
			}[w.typ]
			if cs.State != wantState {
				t.Errorf("event %v: container %v, want %v", w, cs.State, wantState)
			}
			if w.typ == stopped && cs.ExitCode != 7 {
				t.Errorf("stopped event: exit code %d, want 7", cs.ExitCode)
			}
		}
		if w.id == pod && w.typ == stopped && ev.PodSandboxStatus.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
			t.Errorf("pod stopped event: pod %v", ev.PodSandboxStatus.State)
		}
	}
}

// An exit that happened while berthd was down reaches a subscriber of
// the next berthd, with the exit in the container's status.
func TestContainerEventsExitWhileDown(t *testing.T) {
	e := startContainerEnv(t)
	pod := e.pod(t, statsHandler(t), runtimeapi.NamespaceMode_CONTAINER)
	ctr := e.run(t, pod, e.config("later", "sh", "-c", "sleep 2; exit 4"))
	stay := e.run(t, pod, e.config("stays", "sh", "-c", "sleep 3600"))
	e.d.Kill(t)
	time.Sleep(3 * time.Second)
	e.d.Restart(t)
	s := e.followEvents(t)
	ev := s.next(t, ctr)
	if ev.ContainerEventType != runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT {
		t.Fatalf("first event after restart: %v, want STOPPED", ev.ContainerEventType)
	}
	if ev.PodSandboxStatus.GetId() != pod {
		t.Errorf("pod status %v", ev.PodSandboxStatus)
	}
	states := map[string]*runtimeapi.ContainerStatus{}
	for _, cs := range ev.ContainersStatuses {
		states[cs.Id] = cs
	}
	if cs := states[ctr]; cs == nil || cs.State != runtimeapi.ContainerState_CONTAINER_EXITED || cs.ExitCode != 4 {
		t.Errorf("exited container in the event: %v", cs)
	}
	if cs := states[stay]; cs == nil || cs.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("running container in the event: %v (the event must carry the whole pod)", cs)
	}
	// Live events still flow after the restart.
	e.stop(t, stay, 0)
	if ev := s.next(t, stay); ev.ContainerEventType != runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT {
		t.Errorf("after restart, stop gave %v", ev.ContainerEventType)
	}
}
