package steptrace

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

type recorded struct {
	mu    sync.Mutex
	steps map[string]time.Duration
}

func (r *recorded) ObserveStep(op, step string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.steps[op+"/"+step] += d
}

func TestStepsReachTheRecorderAndTheLine(t *testing.T) {
	rec := &recorded{steps: map[string]time.Duration{}}
	ctx, tr := Start(context.Background(), "RunPodSandbox", rec)
	end := Begin(ctx, "netns")
	time.Sleep(2 * time.Millisecond)
	end()
	Add(ctx, "runtime create", 5*time.Millisecond)
	steps := tr.Steps()
	if len(steps) != 2 || steps[0].Name != "netns" || steps[1].Name != "runtime create" {
		t.Fatalf("steps %+v", steps)
	}
	if steps[0].Duration < 2*time.Millisecond {
		t.Errorf("netns took %v, slept 2ms in it", steps[0].Duration)
	}
	if rec.steps["RunPodSandbox/runtime create"] != 5*time.Millisecond || rec.steps["RunPodSandbox/netns"] != steps[0].Duration {
		t.Errorf("recorded %v", rec.steps)
	}
	if s := tr.String(); !strings.HasPrefix(s, "total ") || !strings.Contains(s, ": netns ") || !strings.Contains(s, ", runtime create 5ms @") {
		t.Errorf("line %q", s)
	}
}

func TestUntracedContextRecordsNothing(t *testing.T) {
	ctx := context.Background()
	Begin(ctx, "x")()
	Add(ctx, "y", time.Second)
	if From(ctx) != nil || From(ctx).Steps() != nil || From(ctx).String() != "" {
		t.Error("an untraced context has a trace")
	}
}

func TestConcurrentSteps(t *testing.T) {
	ctx, tr := Start(context.Background(), "op", nil)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); Begin(ctx, "s")() }()
	}
	wg.Wait()
	if n := len(tr.Steps()); n != 8 {
		t.Errorf("%d steps, want 8", n)
	}
}
