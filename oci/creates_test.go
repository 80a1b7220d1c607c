package oci

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
// afterwards would outlive its pod. WaitCreates waits for the pod's
// creates, and only for them.
func TestWaitCreatesWaitsForThePodsCreates(t *testing.T) {
	const pod = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	m := &Manager{creates: newCreates()}
	release := make(chan struct{})
	var finished atomic.Bool
	start := func(podID string, wait bool) {
		go m.creates.Do(context.Background(), createKey{podID, "app", 0}, &runtimeapi.ContainerConfig{}, inflight.Names{}, func(context.Context) (string, error) {
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
	if err := m.WaitCreates(ctx, pod); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("with a create in flight and a short deadline: %v, want DeadlineExceeded", err)
	}
	close(release)
	if err := m.WaitCreates(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	if !finished.Load() {
		t.Error("removed the pod's containers before its CreateContainer finished")
	}
}
