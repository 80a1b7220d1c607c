package server

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// RemovePodSandbox must not remove a pod's containers while a
// CreateContainer for the pod is still at work: the container it makes
// afterwards would outlive its pod.
func TestRemovePodContainersWaitsForCreates(t *testing.T) {
	const pod = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	f := &createFlight{done: make(chan struct{})}
	other := &createFlight{done: make(chan struct{})} // another pod's: not waited for
	c := &containerService{creating: map[string]*createFlight{
		pod + "/app/0":                f,
		"fedcba" + pod[6:] + "/app/0": other,
	}}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.removePodContainers(ctx, pod); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("with a create in flight and a short deadline: %v, want DeadlineExceeded", err)
	}

	var finished atomic.Bool
	go func() {
		time.Sleep(50 * time.Millisecond)
		finished.Store(true)
		close(f.done)
	}()
	if err := c.removePodContainers(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	if !finished.Load() {
		t.Error("removed the pod's containers before its CreateContainer finished")
	}
	if _, ok := c.creating[pod+"/app/0"]; ok {
		t.Error("the pod's create flight is still recorded")
	}
	if len(c.creating) != 1 {
		t.Errorf("creating = %v, want only the other pod's flight", c.creating)
	}
}
