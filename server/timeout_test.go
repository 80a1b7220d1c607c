package server

import (
	"math"
	"testing"
	"time"
)

func TestRequestTimeoutClamps(t *testing.T) {
	for _, tc := range []struct {
		in   int64
		want time.Duration
	}{
		{-5, 0},
		{0, 0},
		{10, 10 * time.Second},
		{maxRequestSeconds, time.Duration(maxRequestSeconds) * time.Second},
		// Unclamped, these wrap to a negative and to a 0.29 s duration.
		{9223372037, time.Duration(maxRequestSeconds) * time.Second},
		{18446744074, time.Duration(maxRequestSeconds) * time.Second},
		{math.MaxInt64, time.Duration(maxRequestSeconds) * time.Second},
	} {
		if got := requestTimeout(tc.in); got != tc.want {
			t.Errorf("requestTimeout(%d) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
