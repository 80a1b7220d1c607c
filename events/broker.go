// Package events fans out state-change events to subscribers without ever
// making the publisher wait. Each subscriber has a bounded buffer; one
// that falls behind far enough to fill it is dropped with ErrOverflow (its
// stream ends, and a client such as kubelet relists), so a slow reader
// costs the node nothing but its own stream.
//
// Events published before Open (while berthd restores its state at start,
// when nobody can be subscribed yet) are kept, up to the buffer size, and
// handed to every subscriber first: the exits found at restart reach
// clients too.
package events

import (
	"sync"

	"github.com/berth-cri/berth/errdefs"
)

// ErrOverflow ends a subscription whose buffer filled up.
var ErrOverflow = errdefs.ResourceExhausted(errOverflow{})

type errOverflow struct{}

func (errOverflow) Error() string {
	return "event subscriber too slow: its buffer filled up and events were dropped; list again and resubscribe"
}

// Broker delivers every published event to every subscriber, in publish
// order.
type Broker[T any] struct {
	size int

	mu      sync.Mutex
	subs    map[*Subscription[T]]struct{}
	open    bool
	backlog []T
}

// NewBroker returns a broker whose subscribers each buffer up to size
// events.
func NewBroker[T any](size int) *Broker[T] {
	if size < 1 {
		size = 1
	}
	return &Broker[T]{size: size, subs: map[*Subscription[T]]struct{}{}}
}

// Subscription is one subscriber's stream of events.
type Subscription[T any] struct {
	b   *Broker[T]
	ch  chan T
	err error // set (under b.mu) before ch is closed
}

// Publish hands ev to every subscriber. It never blocks: a subscriber
// whose buffer is full is dropped with ErrOverflow.
func (b *Broker[T]) Publish(ev T) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
		if len(b.backlog) == b.size {
			b.backlog = b.backlog[1:]
		}
		b.backlog = append(b.backlog, ev)
	}
	for s := range b.subs {
		select {
		case s.ch <- ev:
		default:
			s.endLocked(ErrOverflow)
		}
	}
}

// Open ends the start-up backlog: from now on events go only to the
// subscribers there are.
func (b *Broker[T]) Open() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.open = true
}

// Subscribe starts a subscription, with the start-up backlog first.
func (b *Broker[T]) Subscribe() *Subscription[T] {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := &Subscription[T]{b: b, ch: make(chan T, b.size)}
	for _, ev := range b.backlog {
		s.ch <- ev // fits: the backlog is at most size long
	}
	b.subs[s] = struct{}{}
	return s
}

// Subscribers is the number of live subscriptions.
func (b *Broker[T]) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// Events is the subscription's stream. It is closed when the subscription
// ends: by Close (Err is nil) or by overflow (Err is ErrOverflow).
func (s *Subscription[T]) Events() <-chan T { return s.ch }

// Err says why Events was closed.
func (s *Subscription[T]) Err() error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	return s.err
}

// Close ends the subscription; closing twice is harmless.
func (s *Subscription[T]) Close() {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.endLocked(nil)
}

func (s *Subscription[T]) endLocked(err error) {
	if _, ok := s.b.subs[s]; !ok {
		return
	}
	delete(s.b.subs, s)
	s.err = err
	close(s.ch)
}
