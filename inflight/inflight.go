// Package inflight is the kubelet-retry rule, one mechanism for
// RunPodSandbox and CreateContainer (as CRI-O's internal/resourcestore).
//
// kubelet gives up on a create call when its own deadline passes and
// calls again with the same request while the first is still working.
// The work therefore never runs on its caller's context: it goes on, and
// a retry with an equal request waits for it and gets what it made, even
// when it finished after the first caller left. A different request for
// the same name is AlreadyExists, as is the name of something already
// made and handed out.
package inflight

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/berth-cri/berth/errdefs"
)

// Calls holds the create calls in flight, by name key K (a comparable
// struct, so no two names share a key), and the finished ones whose
// result no caller collected yet. R is the request.
type Calls[K comparable, R any] struct {
	equal   func(a, b R) bool
	timeout time.Duration

	mu    sync.Mutex
	calls map[K]*call[R]
}

type call[R any] struct {
	req  R
	done chan struct{}
	// id and err are set before done is closed.
	id  string
	err error
}

// New returns an empty table. equal reports whether a request is a
// retry of another; timeout bounds each call's work once it runs.
func New[K comparable, R any](equal func(a, b R) bool, timeout time.Duration) *Calls[K, R] {
	return &Calls[K, R]{equal: equal, timeout: timeout, calls: map[K]*call[R]{}}
}

// Names is what Do asks of the resource's owner about a key.
type Names struct {
	// Taken, called with no call holding the key, returns an
	// AlreadyExists error if something made earlier has the name.
	Taken func() error
	// Alive reports whether what a finished call made (id) still exists,
	// so that a retry is not handed something removed meanwhile.
	Alive func(id string) bool
}

// Do makes the resource named key with create, or joins the call that
// is making it or made it with an equal request, and returns the new
// resource's id. create runs on a context of its own (bounded by the
// table's timeout, not ended by ctx), in a goroutine whose panic becomes
// an Internal error. When ctx ends first, Do returns ctx's error and the
// result waits for a retry.
func (c *Calls[K, R]) Do(ctx context.Context, key K, req R, names Names, create func(context.Context) (string, error)) (string, error) {
	c.mu.Lock()
	f, err := c.joinLocked(key, req, names)
	if err == nil && f == nil {
		f = &call[R]{req: req, done: make(chan struct{})}
		c.calls[key] = f
		go c.run(ctx, f, create)
	}
	c.mu.Unlock()
	if err != nil {
		return "", err
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		return "", fmt.Errorf("%v is still being created (a retry with the same request gets it): %w", key, ctx.Err())
	}
	c.mu.Lock()
	// Collected only by a caller still there to get the answer: when the
	// call ends as the caller's deadline passes, select may pick either
	// case, and a result handed to a caller that has left must wait for
	// its retry like any other (else the retry finds the name taken).
	if c.calls[key] == f && ctx.Err() == nil {
		delete(c.calls, key) // collected
	}
	c.mu.Unlock()
	return f.id, f.err
}

// joinLocked returns the call to wait for, nil when key is free.
func (c *Calls[K, R]) joinLocked(key K, req R, names Names) (*call[R], error) {
	if f, ok := c.calls[key]; ok {
		stale := false
		select {
		case <-f.done:
			// Finished while nobody waited: a failure is tried again, a
			// resource is handed over if it is still there.
			stale = f.err != nil || (names.Alive != nil && !names.Alive(f.id))
		default:
		}
		if !stale {
			if !c.equal(f.req, req) {
				return nil, errdefs.AlreadyExistsf("%v is being created by a different request", key)
			}
			return f, nil
		}
		delete(c.calls, key)
	}
	if names.Taken != nil {
		if err := names.Taken(); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

func (c *Calls[K, R]) run(ctx context.Context, f *call[R], create func(context.Context) (string, error)) {
	work, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	defer cancel()
	defer close(f.done)
	defer func() {
		if r := recover(); r != nil {
			f.id, f.err = "", errdefs.Recovered(r)
			var pe *errdefs.PanicError
			errors.As(f.err, &pe)
			logrus.Errorf("create call panicked: %v\n%s", r, pe.Stack)
		}
	}()
	f.id, f.err = create(work)
}

// Wait waits, until ctx ends, for every call whose key match accepts,
// then forgets them: RemovePodSandbox waits for the pod's creates so that
// nothing they make outlives the pod.
func (c *Calls[K, R]) Wait(ctx context.Context, match func(K) bool) error {
	c.mu.Lock()
	var pending []*call[R]
	for k, f := range c.calls {
		if match(k) {
			pending = append(pending, f)
		}
	}
	c.mu.Unlock()
	for _, f := range pending {
		select {
		case <-f.done:
		case <-ctx.Done():
			return fmt.Errorf("a create is still at work: %w", ctx.Err())
		}
	}
	c.mu.Lock()
	for k, f := range c.calls {
		if !match(k) {
			continue
		}
		select {
		case <-f.done:
			delete(c.calls, k)
		default:
		}
	}
	c.mu.Unlock()
	return nil
}
