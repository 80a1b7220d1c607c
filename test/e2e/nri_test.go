package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/test/framework"
)

// nriRequestTimeout is the daemon's [nri] request_timeout in these
// tests: short, so the hanging-plugin test is quick.
const nriRequestTimeout = 1500 * time.Millisecond

// nriEnv is a ctrEnv whose berthd has NRI enabled on a socket of the
// test's own (never the node's /var/run/nri/nri.sock, nor its plugins).
type nriEnv struct {
	*ctrEnv
	socket string
}

func startNRIEnv(t *testing.T) *nriEnv {
	t.Helper()
	return startNRIEnvWith(t, "")
}

// startNRIEnvWith is startNRIEnv with more config (TOML) after [nri]'s.
func startNRIEnvWith(t *testing.T, extraTOML string) *nriEnv {
	t.Helper()
	framework.RequireRoot(t)
	dir, err := os.MkdirTemp("/tmp", "nri")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	socket := filepath.Join(dir, "nri.sock")
	e := startContainerEnvWith(t, fmt.Sprintf(`
[nri]
enable = true
socket_path = %q
plugin_path = %q
plugin_config_path = %q
request_timeout = %q
`, socket, filepath.Join(dir, "plugins"), filepath.Join(dir, "conf.d"), nriRequestTimeout)+extraTOML)
	return &nriEnv{ctrEnv: e, socket: socket}
}

// nriEvent is one event a test plugin saw.
type nriEvent struct {
	kind                  string
	podID, podName, podNS string
	podUID                string
	ctrID, ctrName        string
	ctrState              api.ContainerState
	exitCode              int32
}

func (e nriEvent) String() string {
	if e.ctrID == "" {
		return e.kind + " " + e.podName
	}
	return e.kind + " " + e.ctrName
}

// testPlugin is an NRI plugin on the nri module's stub, run inside the
// test process and connected to berthd's socket like any external one.
type testPlugin struct {
	stub   stub.Stub
	synced chan struct{}
	closed chan struct{}

	mu         sync.Mutex
	events     []nriEvent
	syncPods   []*api.PodSandbox
	syncCtrs   []*api.Container
	onCreate   func(*api.PodSandbox, *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error)
	onRunPod   func(*api.PodSandbox) error
	syncDone   sync.Once
	closedOnce sync.Once
}

// startPlugin connects a plugin and waits for its synchronization; it is
// disconnected when the test ends. configure runs before it connects.
func (e *nriEnv) startPlugin(t *testing.T, name, idx string, configure func(*testPlugin)) *testPlugin {
	t.Helper()
	p := &testPlugin{synced: make(chan struct{}), closed: make(chan struct{})}
	if configure != nil {
		configure(p)
	}
	s, err := stub.New(p, stub.WithPluginName(name), stub.WithPluginIdx(idx), stub.WithSocketPath(e.socket),
		stub.WithOnClose(func() { p.closedOnce.Do(func() { close(p.closed) }) }))
	if err != nil {
		t.Fatal(err)
	}
	p.stub = s
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		cancel()
		t.Fatalf("start NRI plugin %s: %v", name, err)
	}
	t.Cleanup(func() { cancel(); s.Stop() })
	select {
	case <-p.synced:
	case <-time.After(30 * time.Second):
		t.Fatalf("NRI plugin %s was not synchronized within 30s", name)
	}
	return p
}

func (p *testPlugin) record(kind string, pod *api.PodSandbox, ctr *api.Container) {
	ev := nriEvent{kind: kind, podID: pod.GetId(), podName: pod.GetName(), podNS: pod.GetNamespace(), podUID: pod.GetUid()}
	if ctr != nil {
		ev.ctrID, ev.ctrName, ev.ctrState, ev.exitCode = ctr.GetId(), ctr.GetName(), ctr.GetState(), ctr.GetExitCode()
	}
	p.mu.Lock()
	p.events = append(p.events, ev)
	p.mu.Unlock()
}

// eventsOf returns the events of one pod, in the order they came.
func (p *testPlugin) eventsOf(podID string) []nriEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []nriEvent
	for _, ev := range p.events {
		if ev.podID == podID {
			out = append(out, ev)
		}
	}
	return out
}

func (p *testPlugin) Synchronize(_ context.Context, pods []*api.PodSandbox, ctrs []*api.Container) ([]*api.ContainerUpdate, error) {
	p.mu.Lock()
	p.syncPods, p.syncCtrs = pods, ctrs
	p.mu.Unlock()
	p.syncDone.Do(func() { close(p.synced) })
	return nil, nil
}

func (p *testPlugin) RunPodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.record("RunPodSandbox", pod, nil)
	if p.onRunPod != nil {
		return p.onRunPod(pod)
	}
	return nil
}

func (p *testPlugin) StopPodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.record("StopPodSandbox", pod, nil)
	return nil
}

func (p *testPlugin) RemovePodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.record("RemovePodSandbox", pod, nil)
	return nil
}

func (p *testPlugin) CreateContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	p.record("CreateContainer", pod, ctr)
	if p.onCreate != nil {
		return p.onCreate(pod, ctr)
	}
	return nil, nil, nil
}

func (p *testPlugin) PostCreateContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	p.record("PostCreateContainer", pod, ctr)
	return nil
}

func (p *testPlugin) StartContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	p.record("StartContainer", pod, ctr)
	return nil
}

func (p *testPlugin) PostStartContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	p.record("PostStartContainer", pod, ctr)
	return nil
}

func (p *testPlugin) UpdateContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container, _ *api.LinuxResources) ([]*api.ContainerUpdate, error) {
	p.record("UpdateContainer", pod, ctr)
	return nil, nil
}

func (p *testPlugin) PostUpdateContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	p.record("PostUpdateContainer", pod, ctr)
	return nil
}

func (p *testPlugin) StopContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) ([]*api.ContainerUpdate, error) {
	p.record("StopContainer", pod, ctr)
	return nil, nil
}

func (p *testPlugin) RemoveContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) error {
	p.record("RemoveContainer", pod, ctr)
	return nil
}

// kinds lists the events' kinds.
func kinds(evs []nriEvent) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.kind
	}
	return out
}

// TestNRIEventsInOrder drives a pod and a container through their whole
// life and checks that a plugin saw every event, in order, with the
// right pod and container.
func TestNRIEventsInOrder(t *testing.T) {
	e := startNRIEnv(t)
	p := e.startPlugin(t, "events", "10", nil)
	forEachHandler(t, e.d, func(t *testing.T, handler string) {
		ctx := e.d.Ctx(t)
		pod := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)
		podCfg := e.podConfigs[pod]
		id := e.run(t, pod, e.config("worker", "sleep", "3600"))
		if _, err := e.d.Runtime.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{
			ContainerId: id, Linux: &runtimeapi.LinuxContainerResources{CpuShares: 512},
		}); err != nil {
			t.Fatalf("UpdateContainerResources: %v", err)
		}
		e.stop(t, id, 10)
		// A container that exits by itself: StopContainer comes without
		// a StopContainer or RemoveContainer call.
		quick := e.run(t, pod, e.config("quick", "sh", "-c", "exit 3"))
		e.waitExit(t, quick)
		waitFor(t, func() bool {
			return slices.ContainsFunc(p.eventsOf(pod), func(ev nriEvent) bool { return ev.kind == "StopContainer" && ev.ctrID == quick })
		})
		for _, c := range []string{id, quick} {
			if _, err := e.d.Runtime.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: c}); err != nil {
				t.Fatalf("RemoveContainer: %v", err)
			}
		}
		for _, call := range []func() error{
			func() error {
				_, err := e.d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod})
				return err
			},
			func() error { // a second stop: no second event
				_, err := e.d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod})
				return err
			},
			func() error {
				_, err := e.d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod})
				return err
			},
		} {
			if err := call(); err != nil {
				t.Fatal(err)
			}
		}

		evs := p.eventsOf(pod)
		want := []string{
			"RunPodSandbox",
			"CreateContainer", "PostCreateContainer", "StartContainer", "PostStartContainer",
			"UpdateContainer", "PostUpdateContainer", "StopContainer",
			"CreateContainer", "PostCreateContainer", "StartContainer", "PostStartContainer", "StopContainer",
			"RemoveContainer", "RemoveContainer",
			"StopPodSandbox", "RemovePodSandbox",
		}
		if !slices.Equal(kinds(evs), want) {
			t.Fatalf("events:\n got %v\nwant %v", evs, want)
		}
		md := podCfg.GetMetadata()
		for _, ev := range evs {
			if ev.podName != md.Name || ev.podNS != md.Namespace || ev.podUID != md.Uid {
				t.Errorf("%v: pod %s/%s uid %s, want %s/%s uid %s", ev, ev.podNS, ev.podName, ev.podUID, md.Namespace, md.Name, md.Uid)
			}
		}
		for i, ev := range evs[1:13] {
			wantID, wantName := id, "worker"
			if i >= 7 {
				wantID, wantName = quick, "quick"
			}
			if ev.ctrID != wantID || ev.ctrName != wantName {
				t.Errorf("event %d %v: container %s %q, want %s %q", i+1, ev, ev.ctrID, ev.ctrName, wantID, wantName)
			}
		}
		if ev := evs[12]; ev.ctrState != api.ContainerState_CONTAINER_STOPPED || ev.exitCode != 3 {
			t.Errorf("StopContainer of the exited container: state %v exit code %d, want STOPPED 3", ev.ctrState, ev.exitCode)
		}
		if ev := evs[4]; ev.ctrState != api.ContainerState_CONTAINER_RUNNING {
			t.Errorf("PostStartContainer: state %v, want RUNNING", ev.ctrState)
		}
	})
}

// TestNRIAdjustment has a plugin add an environment variable, a mount
// and a memory limit to every container; the container sees all three.
func TestNRIAdjustment(t *testing.T) {
	e := startNRIEnv(t)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "hello"), []byte("from the plugin\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const limit = 96 << 20
	e.startPlugin(t, "adjuster", "20", func(p *testPlugin) {
		p.onCreate = func(_ *api.PodSandbox, ctr *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
			a := &api.ContainerAdjustment{}
			a.AddEnv("NRI_INJECTED", "yes-"+ctr.GetName())
			a.AddMount(&api.Mount{Source: src, Destination: "/nri", Type: "bind", Options: []string{"rbind", "ro"}})
			a.SetLinuxMemoryLimit(limit)
			return a, nil, nil
		}
	})
	forEachHandler(t, e.d, func(t *testing.T, handler string) {
		pod := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)
		id := e.run(t, pod, e.config("adjusted", "sleep", "3600"))
		if out := strings.TrimSpace(string(e.exec(t, id, 10, "sh", "-c", "echo $NRI_INJECTED").Stdout)); out != "yes-adjusted" {
			t.Errorf("NRI_INJECTED in the container = %q, want yes-adjusted", out)
		}
		if out := string(e.exec(t, id, 10, "cat", "/nri/hello").Stdout); out != "from the plugin\n" {
			t.Errorf("/nri/hello in the container = %q", out)
		}
		if r := e.exec(t, id, 10, "touch", "/nri/new"); r.ExitCode == 0 {
			t.Errorf("the read-only mount is writable")
		}
		cg := e.info(t, id).RuntimeSpec.Linux.CgroupsPath
		if got := readInt(t, filepath.Join("/sys/fs/cgroup/memory", cg, "memory.limit_in_bytes")); got != limit {
			t.Errorf("memory limit = %d, want %d", got, limit)
		}
		if got := e.status(t, id).GetResources().GetLinux().GetMemoryLimitInBytes(); got != limit {
			t.Errorf("ContainerStatus memory limit = %d, want %d", got, limit)
		}
	})
}

// TestNRIPluginErrorFailsCleanly has a plugin refuse a container and then
// a pod: the RPC fails with the plugin's message, nothing is left, and
// the retry with the same name works.
func TestNRIPluginErrorFailsCleanly(t *testing.T) {
	e := startNRIEnv(t)
	var refuse sync.Map // names to refuse once
	p := e.startPlugin(t, "refuser", "30", func(p *testPlugin) {
		p.onCreate = func(_ *api.PodSandbox, ctr *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
			if _, ok := refuse.LoadAndDelete(ctr.GetName()); ok {
				return nil, nil, errors.New("no room for " + ctr.GetName())
			}
			return nil, nil, nil
		}
		p.onRunPod = func(pod *api.PodSandbox) error {
			if _, ok := refuse.LoadAndDelete(pod.GetName()); ok {
				return errors.New("no room for pod " + pod.GetName())
			}
			return nil
		}
	})
	handler := handlerNames(t)
	if len(handler) == 0 {
		t.Skip("no runtime handler")
	}
	ctx := e.d.Ctx(t)
	pod := e.pod(t, handler[0], runtimeapi.NamespaceMode_CONTAINER)
	before := stateEntries(t, e.d)

	refuse.Store("refused", true)
	cfg := e.config("refused", "sleep", "3600")
	_, err := e.tryCreate(t, pod, cfg)
	if err == nil || !strings.Contains(err.Error(), "no room for refused") {
		t.Fatalf("CreateContainer refused by a plugin: err = %v, want the plugin's message", err)
	}
	resp, err := e.d.Runtime.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Containers) != 0 {
		t.Errorf("containers after a refused create: %v", resp.Containers)
	}
	if after := stateEntries(t, e.d); !slices.Equal(before, after) {
		t.Errorf("state left by a refused create:\nbefore %v\nafter  %v", before, after)
	}
	if slices.ContainsFunc(p.eventsOf(pod), func(ev nriEvent) bool { return ev.kind == "StartContainer" }) {
		t.Errorf("a refused container was started")
	}
	id := e.run(t, pod, cfg) // the retry, same name and attempt
	if st := e.status(t, id); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("retried container is %v", st.State)
	}

	// A refused pod: not listed, nothing left, the retry works.
	name := "refused-pod"
	refuse.Store(name, true)
	podCfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "e2e", Uid: "uid-" + name},
		Hostname:     name,
		LogDirectory: t.TempDir(),
	}
	before = stateEntries(t, e.d)
	if _, err := e.d.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podCfg, RuntimeHandler: handler[0]}); err == nil || !strings.Contains(err.Error(), "no room for pod") {
		t.Fatalf("RunPodSandbox refused by a plugin: err = %v, want the plugin's message", err)
	}
	pods, err := e.d.Runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, sb := range pods.Items {
		if sb.GetMetadata().GetName() == name {
			t.Errorf("refused pod %s is listed", sb.Id)
		}
	}
	if after := stateEntries(t, e.d); !slices.Equal(before, after) {
		t.Errorf("state left by a refused pod:\nbefore %v\nafter  %v", before, after)
	}
	r, err := e.d.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podCfg, RuntimeHandler: handler[0]})
	if err != nil {
		t.Fatalf("RunPodSandbox retry: %v", err)
	}
	for _, call := range []func() error{
		func() error {
			_, err := e.d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: r.PodSandboxId})
			return err
		},
		func() error {
			_, err := e.d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: r.PodSandboxId})
			return err
		},
	} {
		if err := call(); err != nil {
			t.Fatal(err)
		}
	}
}

// stateEntries lists what berthd keeps per pod and container on disk:
// records, bundles, namespace pins, root filesystems (a directory per
// container in the store; its index files are there from the first
// container on).
func stateEntries(t *testing.T, d *framework.Daemon) []string {
	t.Helper()
	var out []string
	for _, dir := range []string{
		filepath.Join(d.Root, "containers"), filepath.Join(d.RunRoot, "containers"),
		filepath.Join(d.Root, "pods"), filepath.Join(d.RunRoot, "pods"), filepath.Join(d.RunRoot, "ns"),
		filepath.Join(d.Root, "storage", "overlay-containers"), filepath.Join(d.Root, "storage", "vfs-containers"),
		filepath.Join(d.Root, "storage", "overlay"), filepath.Join(d.Root, "storage", "vfs", "dir"),
	} {
		entries, err := os.ReadDir(dir)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, en := range entries {
			if strings.HasSuffix(filepath.Dir(dir), "storage") && !en.IsDir() {
				continue
			}
			out = append(out, filepath.Join(dir, en.Name()))
		}
	}
	slices.Sort(out)
	return out
}

// TestNRILatePluginSynchronized connects a plugin while a pod and a
// container exist: it gets both in Synchronize, its own update of the
// container's memory limit is applied, and later containers reach it as
// events.
func TestNRILatePluginSynchronized(t *testing.T) {
	e := startNRIEnv(t)
	handler := handlerNames(t)
	if len(handler) == 0 {
		t.Skip("no runtime handler")
	}
	pod := e.pod(t, handler[0], runtimeapi.NamespaceMode_CONTAINER)
	id := e.run(t, pod, e.config("early", "sleep", "3600"))

	p := e.startPlugin(t, "late", "40", nil)
	p.mu.Lock()
	pods, ctrs := p.syncPods, p.syncCtrs
	p.mu.Unlock()
	if !slices.ContainsFunc(pods, func(sb *api.PodSandbox) bool { return sb.GetId() == pod }) {
		t.Errorf("Synchronize pods %v lack pod %s", pods, pod)
	}
	i := slices.IndexFunc(ctrs, func(c *api.Container) bool { return c.GetId() == id })
	if i < 0 {
		t.Fatalf("Synchronize containers lack container %s", id)
	}
	if c := ctrs[i]; c.GetName() != "early" || c.GetState() != api.ContainerState_CONTAINER_RUNNING || c.GetPodSandboxId() != pod {
		t.Errorf("synchronized container: name %q state %v pod %s", c.GetName(), c.GetState(), c.GetPodSandboxId())
	}

	// An unsolicited update, applied as UpdateContainerResources is.
	const limit = 80 << 20
	u := &api.ContainerUpdate{ContainerId: id}
	u.SetLinuxMemoryLimit(limit)
	failed, err := p.stub.UpdateContainers([]*api.ContainerUpdate{u})
	if err != nil || len(failed) != 0 {
		t.Fatalf("UpdateContainers: failed %v, err %v", failed, err)
	}
	cg := e.info(t, id).RuntimeSpec.Linux.CgroupsPath
	if got := readInt(t, filepath.Join("/sys/fs/cgroup/memory", cg, "memory.limit_in_bytes")); got != limit {
		t.Errorf("memory limit after the plugin's update = %d, want %d", got, limit)
	}
	if got := e.status(t, id).GetResources().GetLinux().GetMemoryLimitInBytes(); got != limit {
		t.Errorf("ContainerStatus memory limit = %d, want %d", got, limit)
	}

	later := e.create(t, pod, e.config("later", "sleep", "3600"))
	if !slices.ContainsFunc(p.eventsOf(pod), func(ev nriEvent) bool { return ev.kind == "CreateContainer" && ev.ctrID == later }) {
		t.Errorf("the synchronized plugin did not see container %s created", later)
	}
}

// TestNRIHangingPluginDisconnected has a plugin sleep through
// CreateContainer: berthd gives up on it after the request timeout,
// disconnects it and creates the container.
func TestNRIHangingPluginDisconnected(t *testing.T) {
	e := startNRIEnv(t)
	handler := handlerNames(t)
	if len(handler) == 0 {
		t.Skip("no runtime handler")
	}
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	p := e.startPlugin(t, "sleeper", "50", func(p *testPlugin) {
		p.onCreate = func(*api.PodSandbox, *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
			<-release
			return nil, nil, nil
		}
	})
	pod := e.pod(t, handler[0], runtimeapi.NamespaceMode_CONTAINER)
	start := time.Now()
	id := e.create(t, pod, e.config("patient", "sleep", "3600"))
	took := time.Since(start)
	select {
	case <-p.closed:
	case <-time.After(10 * time.Second):
		t.Fatalf("berthd did not disconnect the hanging plugin")
	}
	t.Logf("CreateContainer with a hanging plugin returned after %s (request timeout %s)", took, nriRequestTimeout)
	if st := e.status(t, id); st.State != runtimeapi.ContainerState_CONTAINER_CREATED {
		t.Errorf("container is %v, want CREATED", st.State)
	}
}

// NRI's default validator is on by default (issue 23): a plugin that
// adds an OCI hook (run by the runtime as the node's root) or removes the
// container's network namespace is refused, naming the plugin, and the
// container is not created; an adjustment of the environment still goes
// through.
func TestNRIDefaultValidatorRejectsHooksAndNamespaces(t *testing.T) {
	e := startNRIEnv(t)
	e.startPlugin(t, "escalator", "30", func(p *testPlugin) {
		p.onCreate = func(_ *api.PodSandbox, ctr *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
			a := &api.ContainerAdjustment{}
			switch ctr.GetName() {
			case "hooked":
				a.AddHooks(&api.Hooks{CreateRuntime: []*api.Hook{{Path: "/bin/true"}}})
			case "unshared":
				a.RemoveNamespace(&api.LinuxNamespace{Type: "network"})
			default:
				a.AddEnv("NRI_OK", "1")
			}
			return a, nil, nil
		}
	})
	handler := handlerNames(t)
	if len(handler) == 0 {
		t.Skip("no runtime handler")
	}
	pod := e.pod(t, handler[0], runtimeapi.NamespaceMode_CONTAINER)
	for name, want := range map[string]string{"hooked": "OCI hook", "unshared": "namespace"} {
		_, err := e.tryCreate(t, pod, e.config(name, "sleep", "3600"))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "escalator") {
			t.Errorf("CreateContainer %s with a plugin's %s adjustment: %v, want it refused naming the plugin", name, want, err)
		}
	}
	id := e.run(t, pod, e.config("plain", "sleep", "3600"))
	if out := strings.TrimSpace(string(e.exec(t, id, 10, "sh", "-c", "echo $NRI_OK").Stdout)); out != "1" {
		t.Errorf("NRI_OK = %q: the environment adjustment did not go through", out)
	}
}

// The validator's switches are the node's choice: with OCI hook
// adjustments allowed a plugin's hook goes through; with a required
// plugin that is not there, no container is created.
func TestNRIDefaultValidatorConfig(t *testing.T) {
	handler := handlerNames(t)
	if len(handler) == 0 {
		t.Skip("no runtime handler")
	}
	t.Run("hooks allowed", func(t *testing.T) {
		e := startNRIEnvWith(t, "\n[nri.default_validator]\nreject_oci_hook_adjustment = false\n")
		e.startPlugin(t, "hooker", "30", func(p *testPlugin) {
			p.onCreate = func(*api.PodSandbox, *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
				a := &api.ContainerAdjustment{}
				a.AddHooks(&api.Hooks{Poststop: []*api.Hook{{Path: "/bin/true"}}})
				return a, nil, nil
			}
		})
		pod := e.pod(t, handler[0], runtimeapi.NamespaceMode_CONTAINER)
		e.run(t, pod, e.config("hooked", "sleep", "3600"))
	})
	t.Run("required plugin missing", func(t *testing.T) {
		e := startNRIEnvWith(t, "\n[nri.default_validator]\nrequired_plugins = [\"guard\"]\n")
		e.startPlugin(t, "other", "30", nil)
		pod := e.pod(t, handler[0], runtimeapi.NamespaceMode_CONTAINER)
		if _, err := e.tryCreate(t, pod, e.config("unguarded", "sleep", "3600")); err == nil || !strings.Contains(err.Error(), "guard") {
			t.Errorf("CreateContainer without the required plugin: %v, want it refused naming it", err)
		}
	})
}

// TestNRIExitWhileDownToldOnce: an exit that happened while berthd was
// down reaches NRI plugins and the CRI event stream once each after the
// restart: plugins in their synchronization (the container STOPPED, with
// its exit code), never again as a StopContainer event; subscribers as
// one STOPPED event. A live stop after the restart reaches both.
func TestNRIExitWhileDownToldOnce(t *testing.T) {
	e := startNRIEnv(t)
	handler := handlerNames(t)
	if len(handler) == 0 {
		t.Skip("no runtime handler")
	}
	pod := e.pod(t, handler[0], runtimeapi.NamespaceMode_CONTAINER)
	gone := e.run(t, pod, e.config("gone", "sh", "-c", "sleep 2; exit 4"))
	stay := e.run(t, pod, e.config("stay", "sleep", "3600"))
	e.d.Kill(t)
	time.Sleep(3 * time.Second)
	e.d.Restart(t)
	s := e.followEvents(t)
	p := e.startPlugin(t, "restarted", "10", nil)

	p.mu.Lock()
	ctrs := p.syncCtrs
	p.mu.Unlock()
	i := slices.IndexFunc(ctrs, func(c *api.Container) bool { return c.GetId() == gone })
	if i < 0 {
		t.Fatalf("Synchronize containers lack the container that exited while berthd was down")
	}
	if c := ctrs[i]; c.GetState() != api.ContainerState_CONTAINER_STOPPED || c.GetExitCode() != 4 {
		t.Errorf("synchronized container: state %v exit code %d, want STOPPED 4", c.GetState(), c.GetExitCode())
	}

	// The live stop is the marker: every event about the earlier exit
	// comes before it.
	e.stop(t, stay, 0)
	stopped := 0
	for {
		ev := s.next(t, gone, stay)
		if ev.ContainerId == stay {
			if ev.ContainerEventType == runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT {
				break
			}
			continue
		}
		if ev.ContainerEventType != runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT {
			t.Errorf("event about the container that exited while down: %v", ev.ContainerEventType)
		}
		stopped++
	}
	if stopped != 1 {
		t.Errorf("%d STOPPED events for the exit while down, want 1", stopped)
	}
	waitFor(t, func() bool {
		return slices.ContainsFunc(p.eventsOf(pod), func(ev nriEvent) bool { return ev.kind == "StopContainer" && ev.ctrID == stay })
	})
	for _, ev := range p.eventsOf(pod) {
		if ev.ctrID == gone {
			t.Errorf("plugin heard %s of the container it was synchronized with as stopped", ev.kind)
		}
	}
}
