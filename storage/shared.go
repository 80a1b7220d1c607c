package storage

import (
	"context"
	"sync"
)

// flights lets concurrent pulls of one reference share one download.
//
// golang.org/x/sync/singleflight shares the result but runs the work on
// the first caller's context, so the first caller cancelling would fail
// everyone. Here the work runs on its own context, which is cancelled
// only when every waiter has gone; a caller that leaves early gets its
// own context's error and the rest carry on.
type flights struct {
	mu sync.Mutex
	m  map[string]*flight
}

type flight struct {
	done    chan struct{}
	img     *Image
	err     error
	waiters int
	cancel  context.CancelFunc
}

// do runs fn once per key among concurrent callers and gives each the
// result, or its own ctx's error if it stops waiting first. shared tells
// whether this caller joined a download another caller started.
func (f *flights) do(ctx context.Context, key string, fn func(ctx context.Context) (*Image, error)) (img *Image, shared bool, err error) {
	f.mu.Lock()
	if f.m == nil {
		f.m = map[string]*flight{}
	}
	fl, shared := f.m[key]
	if !shared {
		// The work outlives any one caller: it keeps the callers' values
		// (log fields) but not their cancellation.
		wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		fl = &flight{done: make(chan struct{}), cancel: cancel}
		f.m[key] = fl
		go func() {
			fl.img, fl.err = fn(wctx)
			f.mu.Lock()
			if f.m[key] == fl {
				delete(f.m, key)
			}
			f.mu.Unlock()
			cancel()
			close(fl.done)
		}()
	}
	fl.waiters++
	f.mu.Unlock()

	select {
	case <-fl.done:
		return fl.img, shared, fl.err
	case <-ctx.Done():
		select {
		case <-fl.done: // finished just as we gave up: take the result
			return fl.img, shared, fl.err
		default:
		}
		f.mu.Lock()
		fl.waiters--
		if fl.waiters == 0 {
			// Nobody wants it any more: stop the download, and let the
			// next caller start afresh rather than join a dying one.
			fl.cancel()
			if f.m[key] == fl {
				delete(f.m, key)
			}
		}
		f.mu.Unlock()
		return nil, shared, ctx.Err()
	}
}
