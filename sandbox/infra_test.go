package sandbox

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/errdefs"
)

// fakeInfra stands in for oci's infra runner: the Manager's side (when it
// starts, watches, pins and stops an infra) is what these tests check.
type fakeInfra struct {
	mu      sync.Mutex
	started map[string]bool
	stopped map[string]bool
	exited  map[string]chan struct{}
	// onStart runs inside Start, for a test to break what comes next.
	onStart func(sb *Sandbox)
}

func (f *fakeInfra) Start(_ context.Context, sb *Sandbox) (*Infra, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started[sb.ID] = true
	ch := make(chan struct{})
	f.exited[sb.ID] = ch
	if f.onStart != nil {
		f.onStart(sb)
	}
	// Any PID namespace will do for the pin: ours.
	ns, err := os.Open("/proc/self/ns/pid")
	if err != nil {
		return nil, err
	}
	return &Infra{PID: os.Getpid(), PIDNamespace: ns, Exited: ch}, nil
}

func (f *fakeInfra) Find(podID string) (*Infra, error) {
	return nil, errdefs.NotFoundf("no infra")
}

func (f *fakeInfra) Stop(_ context.Context, podID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped[podID] = true
	return nil
}

func (f *fakeInfra) kill(podID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	close(f.exited[podID])
}

// newInfraManager is a Manager on temporary roots whose pods use the
// host's network and IPC (no CNI needed) and a fake infra runner.
func newInfraManager(t *testing.T) (*Manager, *fakeInfra) {
	requireRoot(t)
	dir := t.TempDir()
	f := &fakeInfra{started: map[string]bool{}, stopped: map[string]bool{}, exited: map[string]chan struct{}{}}
	cgParent := fmt.Sprintf("/berth-infra-test-%08x", rand.Uint32())
	m, err := New(t.Context(), Options{
		Root: filepath.Join(dir, "root"), RunRoot: filepath.Join(dir, "run"),
		CgroupParent: cgParent, HostResolvConf: "/etc/resolv.conf",
		Network: NetworkOptions{ConfDir: filepath.Join(dir, "cni"), CacheDir: filepath.Join(dir, "cache")},
		Infra:   f,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, sb := range m.List() {
			m.Remove(context.Background(), sb.ID, nil)
		}
		m.Close()
		dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", cgParent))
		for _, d := range dirs {
			os.Remove(d)
		}
	})
	return m, f
}

func sharedPIDPod(name string) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "test", Uid: "uid-" + name},
		Hostname: name,
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{
				Network: runtimeapi.NamespaceMode_NODE, Ipc: runtimeapi.NamespaceMode_NODE, Pid: runtimeapi.NamespaceMode_POD,
			},
		}},
	}
}

// The Manager pins the infra's PID namespace, marks the pod NOTREADY when
// the infra exits, and stops the infra when the pod stops.
func TestInfraExitMakesPodNotReady(t *testing.T) {
	m, f := newInfraManager(t)
	sb, err := m.Create(t.Context(), CreateRequest{Config: sharedPIDPod("p"), RuntimeHandler: "runc"})
	if err != nil {
		t.Fatal(err)
	}
	if !sb.Infra || !f.started[sb.ID] {
		t.Fatal("a pod with a shared PID namespace got no infra")
	}
	if want := filepath.Join(m.nsDir, sb.ID, "pid"); sb.PIDNSPath != want || !isPinned(sb.PIDNSPath) {
		t.Fatalf("PID namespace %q (pinned %v), want the pin %s", sb.PIDNSPath, isPinned(sb.PIDNSPath), want)
	}
	f.kill(sb.ID)
	deadline := time.Now().Add(time.Minute)
	for {
		got, err := m.Get(sb.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State == StateNotReady {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("pod still READY a minute after its infra exited")
		}
		time.Sleep(10 * time.Millisecond)
	}
	rec, _, err := m.readRecord(sb.ID)
	if err != nil || rec.State != StateNotReady {
		t.Errorf("recorded state %v (%v), want notready", rec.Sandbox.State, err)
	}
	if err := m.Stop(t.Context(), sb.ID, nil); err != nil {
		t.Fatal(err)
	}
	if !f.stopped[sb.ID] {
		t.Error("StopPodSandbox did not stop the infra")
	}
	if isPinned(sb.PIDNSPath) {
		t.Error("the PID namespace pin survived the stop")
	}
}

// A failure after the infra started (here the final record write) tears
// the infra down with the rest of the pod.
func TestFailureAfterInfraStartStopsIt(t *testing.T) {
	m, f := newInfraManager(t)
	f.onStart = func(sb *Sandbox) {
		// The record becomes a non-empty directory: the next write's
		// rename onto it fails.
		rec := m.recordPath(sb.ID)
		os.Remove(rec)
		os.MkdirAll(filepath.Join(rec, "x"), 0o700)
	}
	_, err := m.Create(t.Context(), CreateRequest{Config: sharedPIDPod("q"), RuntimeHandler: "runc"})
	if err == nil {
		t.Fatal("Create succeeded with an unwritable record")
	}
	if len(f.started) != 1 {
		t.Fatalf("infra started %d times, want once", len(f.started))
	}
	for id := range f.started {
		if !f.stopped[id] {
			t.Errorf("the failed pod's infra %s was left running", id)
		}
		if _, err := os.Stat(filepath.Join(m.podsDir, id)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the failed pod's directory is left: %v", err)
		}
		if entries, _ := os.ReadDir(m.nsDir); len(entries) != 0 {
			t.Errorf("pins left after the failed pod: %v", entries)
		}
	}
	if m.Count() != 0 {
		t.Errorf("%d pods after a failed create", m.Count())
	}
}

// A panic in the code run inside new namespaces (on berthd's own
// goroutine, where no gRPC handler recovers) is an Internal error, and
// nothing stays pinned.
func TestPinNamespacesRecoversPanic(t *testing.T) {
	requireRoot(t)
	dir := filepath.Join(t.TempDir(), "ns")
	_, err := pinNamespaces(dir, []nsKind{nsUTS}, func() error { panic("boom") })
	if !errdefs.Is(err, errdefs.KindInternal) || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("panicking setup: %v, want Internal naming the panic", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left pinned: %v", entries)
	}
}
