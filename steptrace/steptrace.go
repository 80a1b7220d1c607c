// Package steptrace times the steps of one CRI operation (the storage
// layer, the mount, the spec, the monitor, the runtime's create, CNI ADD,
// namespace pinning, record writes), so that where a pod's time goes is
// measured on a live daemon rather than guessed: each step's duration is
// observed by a Recorder (berthd's Prometheus histogram, read by `make
// bench`) and the whole breakdown is one debug log line per operation.
//
// A small package of our own rather than OpenTelemetry: berthd exports
// Prometheus metrics already, a span tree per call would need a collector
// on the node to be of use, and the spans here are flat (a step never
// contains another that matters).
package steptrace

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Recorder receives each finished step of an operation.
type Recorder interface {
	ObserveStep(op, step string, d time.Duration)
}

// Step is one timed step: its offset from the operation's start and its
// duration. Steps that run concurrently overlap.
type Step struct {
	Name     string
	Offset   time.Duration
	Duration time.Duration
}

// Trace collects the steps of one operation. A nil *Trace records
// nothing, so code below the server times its steps whether or not the
// caller traces.
type Trace struct {
	op    string
	start time.Time
	rec   Recorder

	mu    sync.Mutex
	steps []Step
}

type traceKey struct{}

// Start begins the trace of op and returns a context that carries it.
// A nil rec keeps the steps only for String.
func Start(ctx context.Context, op string, rec Recorder) (context.Context, *Trace) {
	t := &Trace{op: op, start: time.Now(), rec: rec}
	return context.WithValue(ctx, traceKey{}, t), t
}

// From returns the trace ctx carries, or nil.
func From(ctx context.Context) *Trace {
	t, _ := ctx.Value(traceKey{}).(*Trace)
	return t
}

// Begin starts the step name of the operation ctx traces and returns the
// function that ends it: `defer steptrace.Begin(ctx, "cni")()`, or
// `end := steptrace.Begin(...); ...; end()`.
func Begin(ctx context.Context, name string) func() {
	t := From(ctx)
	if t == nil {
		return func() {}
	}
	begin := time.Now()
	return func() { t.add(name, begin, time.Since(begin)) }
}

// Add records a step measured elsewhere (by a child process, say) that
// ended now.
func Add(ctx context.Context, name string, d time.Duration) {
	if t := From(ctx); t != nil {
		t.add(name, time.Now().Add(-d), d)
	}
}

func (t *Trace) add(name string, begin time.Time, d time.Duration) {
	t.mu.Lock()
	t.steps = append(t.steps, Step{Name: name, Offset: begin.Sub(t.start), Duration: d})
	t.mu.Unlock()
	if t.rec != nil {
		t.rec.ObserveStep(t.op, name, d)
	}
}

// Steps returns the steps recorded so far, in the order they ended.
func (t *Trace) Steps() []Step {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Step(nil), t.steps...)
}

// String is the breakdown for a log line: "total 41.2ms: netns 6.1ms
// @0.2ms, cni 20.3ms @6.4ms, ...", offsets from the operation's start.
func (t *Trace) String() string {
	if t == nil {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "total %s", round(time.Since(t.start)))
	for i, s := range t.Steps() {
		sep := ", "
		if i == 0 {
			sep = ": "
		}
		fmt.Fprintf(&b, "%s%s %s @%s", sep, s.Name, round(s.Duration), round(s.Offset))
	}
	return b.String()
}

func round(d time.Duration) time.Duration {
	return d.Round(10 * time.Microsecond)
}
