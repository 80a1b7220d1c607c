package server

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/inflight"
)

// RemovePodSandbox must not remove a pod's containers while a
// CreateContainer for the pod is still at work: the container it makes
// afterwards would outlive its pod.
func TestRemovePodContainersWaitsForCreates(t *testing.T) {
	const pod = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	c := &containerService{creates: newCreates()}
	release := make(chan struct{})
	var finished atomic.Bool
	start := func(podID string, wait bool) {
		req := &runtimeapi.CreateContainerRequest{PodSandboxId: podID}
		go c.creates.Do(context.Background(), containerKey{podID, "app", 0}, req, inflight.Names{}, func(context.Context) (string, error) {
			if wait {
				<-release
				time.Sleep(20 * time.Millisecond)
				finished.Store(true)
				return "id", nil
			}
			select {} // another pod's: never waited for
		})
	}
	start(pod, true)
	start("fedcba"+pod[6:], false)
	time.Sleep(10 * time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.removePodContainers(ctx, pod); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("with a create in flight and a short deadline: %v, want DeadlineExceeded", err)
	}
	close(release)
	if err := c.removePodContainers(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	if !finished.Load() {
		t.Error("removed the pod's containers before its CreateContainer finished")
	}
}

// A pod stop gives each container the default grace, or half of what the
// caller has left, never a negative one.
func TestStopGraceFitsTheDeadline(t *testing.T) {
	now := time.Now()
	def := 10 * time.Second
	if g := stopGrace(context.Background(), def, now); g != def {
		t.Errorf("no deadline: %s, want %s", g, def)
	}
	ctx, cancel := context.WithDeadline(context.Background(), now.Add(2*time.Second))
	defer cancel()
	if g := stopGrace(ctx, def, now); g != time.Second {
		t.Errorf("2s left: %s, want 1s", g)
	}
	long, cancel2 := context.WithDeadline(context.Background(), now.Add(2*time.Minute))
	defer cancel2()
	if g := stopGrace(long, def, now); g != def {
		t.Errorf("2m left: %s, want %s", g, def)
	}
	if g := stopGrace(ctx, def, now.Add(time.Hour)); g != 0 {
		t.Errorf("deadline passed: %s, want 0", g)
	}
}
