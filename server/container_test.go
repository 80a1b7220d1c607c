package server

import (
	"context"
	"testing"
	"time"
)

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
