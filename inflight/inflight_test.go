package inflight

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/berth-cri/berth/errdefs"
)

type key struct{ name, ns string }

func newCalls() *Calls[key, string] {
	return New[key](func(a, b string) bool { return a == b }, time.Minute)
}

// A retry with the same request waits for the call in flight and gets its
// result, even after the first caller gave up; a different request for
// the name is AlreadyExists; once collected, the name is the owner's.
func TestRetryJoinsTheCallInFlight(t *testing.T) {
	c := newCalls()
	release := make(chan struct{})
	made := 0
	create := func(context.Context) (string, error) {
		made++
		<-release
		return "id1", nil
	}
	names := Names{Alive: func(string) bool { return true }}

	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.Do(short, key{"a", "b"}, "req", names, create); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("first call with a short deadline: %v, want DeadlineExceeded", err)
	}
	if _, err := c.Do(context.Background(), key{"a", "b"}, "other", names, create); !errdefs.IsAlreadyExists(err) {
		t.Errorf("different request for the name in flight: %v, want AlreadyExists", err)
	}
	close(release)
	// The work finished after its caller left: the retry collects it.
	time.Sleep(10 * time.Millisecond)
	id, err := c.Do(context.Background(), key{"a", "b"}, "req", names, create)
	if err != nil || id != "id1" || made != 1 {
		t.Fatalf("retry got %q, %v after %d creates, want id1 from the one create", id, err, made)
	}
	// Collected: now the owner's name registry decides.
	taken := Names{Taken: func() error { return errdefs.AlreadyExistsf("taken") }}
	if _, err := c.Do(context.Background(), key{"a", "b"}, "req", taken, create); !errdefs.IsAlreadyExists(err) {
		t.Errorf("after collection: %v, want the owner's AlreadyExists", err)
	}
}

// A call that ends as its caller's deadline passes may be answered to a
// caller already gone (select picks either ready case): its retry still
// gets the container, never "name taken" by it. Each round's caller has
// left before its call ends, so before the fix about half the rounds
// collected the result and the retry found the name taken.
func TestResultForACallerGoneWaitsForTheRetry(t *testing.T) {
	c := newCalls()
	names := Names{
		Taken: func() error { return errdefs.AlreadyExistsf("name taken") },
		Alive: func(string) bool { return true },
	}
	for i := range 200 {
		k := key{"r", string(rune('a'+i%26)) + strings.Repeat("x", i/26)}
		gone, cancel := context.WithCancel(context.Background())
		ended := make(chan struct{})
		create := func(context.Context) (string, error) {
			cancel()
			defer close(ended)
			return "id", nil
		}
		c.Do(gone, k, "req", Names{Alive: names.Alive}, create)
		<-ended
		time.Sleep(time.Millisecond) // the call is done: both cases were ready
		if id, err := c.Do(context.Background(), k, "req", names, create); err != nil || id != "id" {
			t.Fatalf("round %d: retry after the caller left got %q, %v; want the call's id", i, id, err)
		}
	}
}

// Keys are compared whole: names that join to the same string with a
// separator are different keys.
func TestKeysAreUnambiguous(t *testing.T) {
	c := newCalls()
	block := make(chan struct{})
	defer close(block)
	go c.Do(context.Background(), key{"a_b", "c"}, "r", Names{}, func(context.Context) (string, error) { <-block; return "1", nil })
	time.Sleep(10 * time.Millisecond)
	id, err := c.Do(context.Background(), key{"a", "b_c"}, "r", Names{}, func(context.Context) (string, error) { return "2", nil })
	if err != nil || id != "2" {
		t.Errorf("a different key got %q, %v, want its own id 2", id, err)
	}
}

// A panic in the work answers Internal and leaves the process alive; the
// failed call does not hold the name.
func TestPanicInCreateIsInternal(t *testing.T) {
	c := newCalls()
	_, err := c.Do(context.Background(), key{"p", "q"}, "r", Names{}, func(context.Context) (string, error) {
		var m map[string]int
		m["boom"]++ // nil map write
		return "", nil
	})
	if !errdefs.Is(err, errdefs.KindInternal) || !strings.Contains(err.Error(), "panic") {
		t.Fatalf("panicking create: %v, want Internal naming the panic", err)
	}
	id, err := c.Do(context.Background(), key{"p", "q"}, "r", Names{}, func(context.Context) (string, error) { return "ok", nil })
	if err != nil || id != "ok" {
		t.Errorf("after a panic: %q, %v", id, err)
	}
}

// Wait waits for the matching calls in flight only, up to its context.
func TestWaitForMatchingCalls(t *testing.T) {
	c := newCalls()
	release := make(chan struct{})
	go c.Do(context.Background(), key{"x", "pod1"}, "r", Names{}, func(context.Context) (string, error) { <-release; return "1", nil })
	go c.Do(context.Background(), key{"y", "pod2"}, "r", Names{}, func(context.Context) (string, error) { select {} })
	time.Sleep(10 * time.Millisecond)
	pod1 := func(k key) bool { return k.ns == "pod1" }
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := c.Wait(short, pod1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait with a call in flight: %v, want DeadlineExceeded", err)
	}
	close(release)
	if err := c.Wait(context.Background(), pod1); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.calls[key{"x", "pod1"}]; ok {
		t.Error("the waited-for call is still held")
	}
	if _, ok := c.calls[key{"y", "pod2"}]; !ok {
		t.Error("another pod's call was dropped")
	}
}
