package main

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"

	"github.com/berth-cri/berth/config"
)

// tuneGC applies [memory] gc_percent and soft_limit, unless the GOGC or
// GOMEMLIMIT environment variables already set them for the runtime.
func tuneGC(c config.MemoryConfig) {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(c.GCPercent)
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set && c.SoftLimit > 0 {
		debug.SetMemoryLimit(c.SoftLimit)
	}
}

// releaser gives memory back to the kernel once a burst of work is over.
//
// The Go runtime keeps what a collection freed, and returns it in the
// background over minutes; a pull leaves megabytes of decompression and
// copy buffers behind, pods starting leave their garbage too, and both
// map program pages no idle request uses. berthd's work comes in bursts
// (a pull, a deployment's pods), so once none of the RPCs that do such
// work has run for `after`, it collects, returns every free page
// (debug.FreeOSMemory), and unmaps its program pages (progPages.drop).
// That costs a collection and, for the next request, page faults served
// from memory: microseconds, against megabytes held.
//
// Polling RPCs (List*, *Status, *Stats, Version, ...) do not count as
// work: kubelet sends them every second, and the memory they use is what
// an idle berthd needs anyway.
type releaser struct {
	after time.Duration
	// release returns the memory; returnMemory, or a test's counter.
	release func()

	mu    sync.Mutex
	busy  int
	timer *time.Timer
}

// workRPCs are the RPCs after which memory is worth returning.
var workRPCs = map[string]bool{
	"PullImage": true, "RemoveImage": true,
	"RunPodSandbox": true, "StopPodSandbox": true, "RemovePodSandbox": true,
	"CreateContainer": true, "StartContainer": true, "StopContainer": true, "RemoveContainer": true,
	"ExecSync": true, "UpdateContainerResources": true, "CheckpointContainer": true,
}

func newReleaser(after time.Duration, release func()) *releaser {
	r := &releaser{after: after, release: release}
	r.timer = time.AfterFunc(time.Hour, r.fire)
	r.timer.Stop()
	return r
}

// unary is the interceptor that tracks work RPCs.
func (r *releaser) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if !workRPCs[info.FullMethod[strings.LastIndexByte(info.FullMethod, '/')+1:]] {
		return handler(ctx, req)
	}
	r.begin()
	defer r.end()
	return handler(ctx, req)
}

func (r *releaser) begin() {
	r.mu.Lock()
	r.busy++
	r.timer.Stop()
	r.mu.Unlock()
}

func (r *releaser) end() {
	r.mu.Lock()
	r.busy--
	if r.busy == 0 {
		r.timer.Reset(r.after)
	}
	r.mu.Unlock()
}

// fire runs `after` past the last work RPC, unless another began.
func (r *releaser) fire() {
	r.mu.Lock()
	busy := r.busy
	r.mu.Unlock()
	if busy > 0 {
		return
	}
	r.release()
}

// memoryReturner returns what berthd holds but does not use.
type memoryReturner struct {
	prog *progPages // nil when berthd cannot find its own program
}

func newMemoryReturner() *memoryReturner {
	prog, err := newProgPages()
	if err != nil {
		logrus.Warnf("memory: program pages stay mapped: %v", err)
		return &memoryReturner{}
	}
	return &memoryReturner{prog: prog}
}

// settle runs once serving begins: it returns what start-up left (the
// restored state's garbage, init-only program pages).
func (m *memoryReturner) settle() {
	freeHeap()
	if m.prog != nil {
		if err := m.prog.settle(); err != nil {
			logrus.Warnf("memory: %v", err)
		}
	}
}

// afterWork runs when a burst of work is over.
func (m *memoryReturner) afterWork() {
	freeHeap()
	if m.prog != nil {
		if err := m.prog.drop(); err != nil {
			logrus.Debugf("memory: %v", err) // said at start already, as a warning
		}
	}
}

// freeHeap collects twice, so that what sync.Pools cached during the
// burst (they keep their objects for one collection, as victims for a
// second) goes too, then returns every free page to the kernel.
func freeHeap() {
	runtime.GC()
	debug.FreeOSMemory()
}
