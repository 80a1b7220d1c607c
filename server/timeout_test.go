package server

import (
	"math"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/errdefs"
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

func TestPodMetadataLimits(t *testing.T) {
	long := func(n int) string { return string(make([]byte, n)) }
	if err := checkPodMetadataLimits(nil); err != nil {
		t.Errorf("nil metadata (refused later as missing): %v", err)
	}
	for _, md := range []*runtimeapi.PodSandboxMetadata{
		{Name: long(254)}, {Namespace: long(64)}, {Uid: long(129)}, {Name: long(1 << 20)},
	} {
		if err := checkPodMetadataLimits(md); !errdefs.IsInvalid(err) {
			t.Errorf("%d/%d/%d bytes: %v, want Invalid", len(md.Name), len(md.Namespace), len(md.Uid), err)
		}
	}
	if err := checkPodMetadataLimits(&runtimeapi.PodSandboxMetadata{Name: long(253), Namespace: long(63), Uid: long(36)}); err != nil {
		t.Errorf("at the limits: %v", err)
	}
}
