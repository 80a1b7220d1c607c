package main

import (
	"testing"
	"time"
)

func TestPercentiles(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	if pct(ds, 50) != 50*time.Millisecond || pct(ds, 90) != 90*time.Millisecond || pct(ds, 99) != 99*time.Millisecond {
		t.Errorf("p50/p90/p99 = %v %v %v", pct(ds, 50), pct(ds, 90), pct(ds, 99))
	}
	if one := []time.Duration{7 * time.Millisecond}; pct(one, 99) != 7*time.Millisecond {
		t.Errorf("one sample: %v", pct(one, 99))
	}
}
