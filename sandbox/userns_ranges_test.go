package sandbox

import (
	"strings"
	"testing"

	"github.com/berth-cri/berth/errdefs"
)

// A pod's user namespace may not map node ids below the floor (the
// issue's host_id=1, length=4294967294 was accepted), nor ids another pod
// has or is being given; a range that fits is held until released.
func TestReserveUserNS(t *testing.T) {
	m := &Manager{opts: Options{UsernsMinHostID: DefaultUsernsMinHostID},
		pods: map[string]*pod{}, usernsPending: map[string]*userNS{}}
	ns := func(host, size uint32) *userNS {
		return &userNS{uids: []IDMap{{0, host, size}}, gids: []IDMap{{0, host, size}}}
	}
	m.pods["running"] = &pod{sb: &Sandbox{Definition: Definition{ID: "running"}, Status: Status{UIDMappings: ns(300000, 65536).uids, GIDMappings: ns(300000, 65536).gids}}}

	if _, err := m.reserveUserNS("low", ns(1, 4294967294)); !errdefs.IsInvalid(err) || !strings.Contains(err.Error(), "floor") {
		t.Errorf("host ids from 1: %v, want refused below the floor", err)
	}
	if _, err := m.reserveUserNS("over", ns(330000, 65536)); !errdefs.IsInvalid(err) || !strings.Contains(err.Error(), "overlap") {
		t.Errorf("overlapping a running pod: %v, want refused", err)
	}
	release, err := m.reserveUserNS("next", ns(365536, 65536))
	if err != nil {
		t.Fatalf("the next free range: %v", err)
	}
	if _, err := m.reserveUserNS("same", ns(365536, 65536)); !errdefs.IsInvalid(err) {
		t.Errorf("the range of a pod being created: %v, want refused", err)
	}
	release()
	if rel, err := m.reserveUserNS("same", ns(365536, 65536)); err != nil {
		t.Errorf("after release: %v", err)
	} else {
		rel()
	}
	gidsOnly := &userNS{uids: []IDMap{{0, 500000, 65536}}, gids: []IDMap{{0, 300000, 10}}}
	if _, err := m.reserveUserNS("gids", gidsOnly); !errdefs.IsInvalid(err) {
		t.Errorf("gids overlapping a running pod's: %v, want refused", err)
	}
}
