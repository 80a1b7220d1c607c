package main

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
)

func call(r *releaser, method string, during func()) {
	info := &grpc.UnaryServerInfo{FullMethod: "/runtime.v1.RuntimeService/" + method}
	_, _ = r.unary(context.Background(), nil, info, func(context.Context, any) (any, error) {
		if during != nil {
			during()
		}
		return nil, nil
	})
}

// waitCount waits up to d for n to reach want and returns what it is.
func waitCount(n *atomic.Int32, want int32, d time.Duration) int32 {
	for deadline := time.Now().Add(d); n.Load() < want && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	return n.Load()
}

func TestReleaserReleasesOnceAfterWork(t *testing.T) {
	var n atomic.Int32
	r := newReleaser(50*time.Millisecond, func() { n.Add(1) })
	call(r, "RunPodSandbox", nil)
	call(r, "CreateContainer", nil)
	if got := waitCount(&n, 1, 2*time.Second); got != 1 {
		t.Fatalf("released %d times after a burst of work, want 1", got)
	}
	time.Sleep(150 * time.Millisecond)
	if got := n.Load(); got != 1 {
		t.Fatalf("released %d times after one burst, want 1", got)
	}
}

func TestReleaserIgnoresPolls(t *testing.T) {
	var n atomic.Int32
	r := newReleaser(20*time.Millisecond, func() { n.Add(1) })
	for _, m := range []string{"ListContainers", "PodSandboxStatus", "Version", "ListPodSandboxStats"} {
		call(r, m, nil)
	}
	time.Sleep(150 * time.Millisecond)
	if got := n.Load(); got != 0 {
		t.Fatalf("released %d times after polls only, want 0", got)
	}
}

func TestReleaserWaitsForWorkInFlight(t *testing.T) {
	var n atomic.Int32
	r := newReleaser(20*time.Millisecond, func() { n.Add(1) })
	call(r, "StopContainer", nil)
	// A pull starts before the first burst's delay is over and outlasts
	// it: nothing is released while it runs.
	call(r, "PullImage", func() {
		time.Sleep(150 * time.Millisecond)
		if got := n.Load(); got != 0 {
			t.Errorf("released %d times while a pull ran, want 0", got)
		}
	})
	if got := waitCount(&n, 1, 2*time.Second); got != 1 {
		t.Fatalf("released %d times after the pull, want 1", got)
	}
}
