package events

import (
	"errors"
	"testing"

	"github.com/berth-cri/berth/errdefs"
)

func TestBacklogThenLiveInOrder(t *testing.T) {
	b := NewBroker[int](8)
	b.Publish(1)
	b.Publish(2)
	b.Open()
	b.Publish(3) // nobody subscribed, after Open: gone
	s := b.Subscribe()
	defer s.Close()
	b.Publish(4)
	var got []int
	for range 3 {
		got = append(got, <-s.Events())
	}
	if want := []int{1, 2, 4}; !equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestBacklogKeepsTheNewest(t *testing.T) {
	b := NewBroker[int](2)
	for i := range 5 {
		b.Publish(i)
	}
	b.Open()
	s := b.Subscribe()
	defer s.Close()
	if got := []int{<-s.Events(), <-s.Events()}; !equal(got, []int{3, 4}) {
		t.Fatalf("backlog %v, want [3 4]", got)
	}
}

// A subscriber that does not read is dropped with ErrOverflow; Publish
// never waits for it, and other subscribers keep every event.
func TestSlowSubscriberDroppedPublisherNeverBlocks(t *testing.T) {
	b := NewBroker[int](4)
	b.Open()
	slow := b.Subscribe()
	fast := b.Subscribe()
	defer fast.Close()
	acks := make(chan int)
	go func() {
		for ev := range fast.Events() {
			acks <- ev
		}
		close(acks)
	}()
	var got []int
	for i := range 100 {
		b.Publish(i) // returns at once even though slow never reads
		got = append(got, <-acks)
	}
	n := 0
	for range slow.Events() {
		n++
	}
	if n != 4 {
		t.Errorf("slow subscriber got %d events before being dropped, want its buffer's 4", n)
	}
	if err := slow.Err(); !errors.Is(err, ErrOverflow) || !errdefs.Is(err, errdefs.KindResourceExhausted) {
		t.Errorf("slow subscriber's error = %v, want ErrOverflow (resource exhausted)", err)
	}
	if len(got) != 100 {
		t.Errorf("fast subscriber got %d events, want 100", len(got))
	}
	if b.Subscribers() != 1 {
		t.Errorf("%d subscribers left, want 1", b.Subscribers())
	}
}

func TestCloseEndsStreamWithoutError(t *testing.T) {
	b := NewBroker[string](1)
	s := b.Subscribe()
	s.Close()
	s.Close()
	if _, ok := <-s.Events(); ok {
		t.Fatal("stream still open after Close")
	}
	if s.Err() != nil {
		t.Errorf("Err after Close = %v", s.Err())
	}
	b.Publish("x") // no subscriber: nothing to do, no panic
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
