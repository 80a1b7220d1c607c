package oci

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/record"
)

// These tests run real containers through runc under the real monitor,
// with a busybox root filesystem made from the host's /bin/busybox and the
// host's network (no pod namespaces: those are the sandbox's). The
// end-to-end tests in test/e2e cover the same through berthd and pods.

var (
	monitorOnce sync.Once
	monitorBin  string
	monitorErr  error
)

func requireRuntime(t *testing.T) (string, Runtime) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs containers")
	}
	if _, err := os.Stat("/usr/sbin/runc"); err != nil {
		t.Skip("needs runc at /usr/sbin/runc")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs /bin/busybox (busybox-static)")
	}
	monitorOnce.Do(func() {
		dir, err := os.MkdirTemp("", "berth-oci-test-")
		if err != nil {
			monitorErr = err
			return
		}
		monitorBin = filepath.Join(dir, "berth-monitor")
		_, file, _, _ := runtime.Caller(0)
		cmd := exec.Command("go", "build", "-o", monitorBin, "./cmd/berth-monitor")
		cmd.Dir = filepath.Join(filepath.Dir(file), "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			monitorErr = fmt.Errorf("build berth-monitor: %v\n%s", err, out)
		}
	})
	if monitorErr != nil {
		t.Fatal(monitorErr)
	}
	rt := Runtime{Handler: "runc", Path: "/usr/sbin/runc", Root: filepath.Join(t.TempDir(), "runc")}
	if p := os.Getenv("BERTH_TEST_RUNTIME"); p != "" {
		// Any runc-compatible binary (berth-runner, crun).
		rt.Handler, rt.Path = filepath.Base(p), p
	}
	return monitorBin, rt
}

// busyboxRootfs is a root filesystem with busybox and its applets.
func busyboxRootfs(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"bin", "etc", "proc", "sys", "dev", "tmp"} {
		must(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	b, err := os.ReadFile("/bin/busybox")
	must(t, err)
	must(t, os.WriteFile(filepath.Join(root, "bin/busybox"), b, 0o755))
	for _, a := range []string{"sh", "sleep", "echo", "cat", "id", "true", "false", "yes", "head", "kill", "trap"} {
		must(t, os.Symlink("busybox", filepath.Join(root, "bin", a)))
	}
	must(t, os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644))
	return root
}

// fakeRootfs is a store whose root filesystems are busybox directories.
type fakeRootfs struct {
	t       *testing.T
	mu      sync.Mutex
	roots   map[string]string
	removed []string
}

func (f *fakeRootfs) CreateRootfs(_ context.Context, id, _, image string, _ *UserNS) (*RootfsImage, error) {
	root := busyboxRootfs(f.t)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.roots[id] = root
	return &RootfsImage{Name: image, Ref: image, ID: "sha256:busybox"}, nil
}

func (f *fakeRootfs) MountContainerRootfs(id string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r, ok := f.roots[id]; ok {
		return r, nil
	}
	return "", fmt.Errorf("no root filesystem %s", id)
}

func (f *fakeRootfs) CreateImageVolume(context.Context, string, int, string, string) (ImageVolume, error) {
	return ImageVolume{}, fmt.Errorf("no image volumes here")
}

func (f *fakeRootfs) RemoveContainerRootfs(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.roots, id)
	f.removed = append(f.removed, id)
	return nil
}

func (f *fakeRootfs) ListContainerRootfs() ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for id := range f.roots {
		ids = append(ids, id)
	}
	return ids, nil
}

func testID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// notes is a Notifier that records every step it hears.
type notes struct {
	mu    sync.Mutex
	steps []string
}

func (n *notes) Changing(_ context.Context, ch *Change) error {
	n.add(ch.Step, ch.Container)
	return nil
}

func (n *notes) Changed(_ context.Context, ch Change) { n.add(ch.Step, ch.Container) }

func (n *notes) add(s Step, c *Container) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.steps = append(n.steps, s.String()+" "+c.Record().Name)
}

// of returns the steps heard of the container named name.
func (n *notes) of(name string) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, s := range n.steps {
		if strings.HasSuffix(s, " "+name) {
			out = append(out, strings.TrimSuffix(s, " "+name))
		}
	}
	return out
}

type testEnv struct {
	m       *Manager
	opts    Options
	rt      Runtime
	rootfs  *fakeRootfs
	notes   *notes
	logDir  string
	cgroups string
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	mon, rt := requireRuntime(t)
	// Short paths: the monitor's sockets live under the run root.
	dir, err := os.MkdirTemp("/tmp", "bo")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	host, err := DetectHost(true)
	must(t, err)
	e := &testEnv{rt: rt, rootfs: &fakeRootfs{t: t, roots: map[string]string{}}, notes: &notes{}, logDir: filepath.Join(dir, "logs"), cgroups: "/berth-oci-test-" + testID()[:8]}
	e.opts = Options{Root: filepath.Join(dir, "root"), RunRoot: filepath.Join(dir, "run"), MonitorPath: mon,
		Host: host, Rootfs: e.rootfs, Notifier: e.notes, ExecSyncMaxOutput: 1 << 20}
	e.m, _, err = NewManager(context.Background(), e.opts)
	must(t, err)
	e.m.Watch()
	t.Cleanup(func() {
		for _, c := range e.m.All() {
			if err := e.m.Remove(context.Background(), c); err != nil {
				t.Errorf("cleanup: remove %s: %v", c.ID(), err)
			}
		}
		e.m.Close()
		for _, sub := range []string{"cpu", "memory", "pids", "devices", "freezer", "blkio", "cpuset", "cpuacct", "systemd", "unified"} {
			os.Remove(filepath.Join("/sys/fs/cgroup", sub, e.cgroups))
		}
	})
	return e
}

func (e *testEnv) create(t *testing.T, cfg *runtimeapi.ContainerConfig) *Container {
	t.Helper()
	if cfg.Metadata == nil {
		cfg.Metadata = &runtimeapi.ContainerMetadata{Name: "c"}
	}
	cfg.LogPath = cfg.Metadata.Name + ".log"
	c, err := e.m.Create(context.Background(), &CreateRequest{
		Spec: SpecOptions{Config: cfg, Host: e.opts.Host,
			Pod: &Pod{ID: "pod", CgroupParent: e.cgroups, LogDirectory: e.logDir}},
		Runtime: e.rt,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func waitExited(t *testing.T, c *Container) Record {
	t.Helper()
	select {
	case <-c.Exited():
	case <-time.After(30 * time.Second):
		t.Fatalf("container %s did not exit", c.ID())
	}
	return c.Record()
}

func TestLifecycle(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	c := e.create(t, &runtimeapi.ContainerConfig{Command: []string{"sh", "-c", "trap 'exit 143' TERM; echo hello; sleep 60 & wait"}})
	if r := c.Record(); r.State != StateCreated || r.PID <= 0 || r.MonitorPID <= 0 {
		t.Fatalf("after create: %+v", r)
	}
	must(t, e.m.Start(ctx, c))
	if r := c.Record(); r.State != StateRunning || r.StartedAt.IsZero() {
		t.Fatalf("after start: %+v", r)
	}
	res, err := e.m.ExecSync(ctx, c, []string{"sh", "-c", "echo out; echo err >&2; exit 3"}, 0)
	must(t, err)
	if string(res.Stdout) != "out\n" || string(res.Stderr) != "err\n" || res.ExitCode != 3 {
		t.Errorf("exec = %q %q %d", res.Stdout, res.Stderr, res.ExitCode)
	}
	must(t, e.m.Stop(ctx, c, 10*time.Second))
	r := waitExited(t, c)
	if r.ExitCode != 128+int32(syscall.SIGTERM) || r.Reason != ReasonError {
		t.Errorf("after stop: exit %d reason %q", r.ExitCode, r.Reason)
	}
	log, err := os.ReadFile(r.LogPath)
	must(t, err)
	if !strings.Contains(string(log), " stdout F hello\n") {
		t.Errorf("log %q lacks the CRI line for hello", log)
	}
	must(t, e.m.Remove(ctx, c))
	if _, err := e.m.Get(c.ID()); err == nil {
		t.Error("removed container still known")
	}
	if _, err := os.Stat(c.paths.dir); !os.IsNotExist(err) {
		t.Errorf("record dir left: %v", err)
	}
	if len(e.rootfs.removed) != 1 {
		t.Errorf("rootfs removals = %v", e.rootfs.removed)
	}
	want := []string{"create", "created", "start", "started", "exited", "removed"}
	if got := e.notes.of("c"); !slices.Equal(got, want) {
		t.Errorf("notifier heard %v, want %v", got, want)
	}
}

func TestExecTimeoutKills(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	c := e.create(t, &runtimeapi.ContainerConfig{Command: []string{"sleep", "60"}})
	must(t, e.m.Start(ctx, c))
	_, err := e.m.ExecSync(ctx, c, []string{"sh", "-c", "echo $$ > /tmp/pid; exec sleep 30"}, time.Second)
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("exec past its timeout: %v", err)
	}
	res, err := e.m.ExecSync(ctx, c, []string{"sh", "-c", "kill -0 $(cat /tmp/pid) && echo alive || echo gone"}, 0)
	must(t, err)
	if strings.TrimSpace(string(res.Stdout)) != "gone" {
		t.Errorf("the timed-out command still runs: %q", res.Stdout)
	}
}

func TestExitCodes(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	ok := e.create(t, &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "ok"}, Command: []string{"true"}})
	bad := e.create(t, &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "bad"}, Command: []string{"sh", "-c", "exit 7"}})
	must(t, e.m.Start(ctx, ok))
	must(t, e.m.Start(ctx, bad))
	if r := waitExited(t, ok); r.ExitCode != 0 || r.Reason != ReasonCompleted {
		t.Errorf("true: %d %q", r.ExitCode, r.Reason)
	}
	if r := waitExited(t, bad); r.ExitCode != 7 || r.Reason != ReasonError {
		t.Errorf("exit 7: %d %q", r.ExitCode, r.Reason)
	}
}

func TestRestoreAdopts(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	running := e.create(t, &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "run"}, Command: []string{"sleep", "60"}})
	must(t, e.m.Start(ctx, running))
	dies := e.create(t, &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "dies"}, Command: []string{"sh", "-c", "sleep 1; exit 4"}})
	must(t, e.m.Start(ctx, dies))
	// A half-made container: its record says creating.
	half := e.m.newContainer(Record{Metadata: Metadata{ID: testID(), Runtime: e.rt}, Status: Status{State: StateCreating}})
	must(t, os.MkdirAll(half.paths.dir, 0o700))
	must(t, half.update(record.Durable, nil))
	// Its monitor still runs (berthd died while the runtime created it;
	// this one still waits for its config).
	stray := exec.Command(e.opts.MonitorPath, "--id", half.rec.ID)
	stray.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	strayIn, err := stray.StdinPipe()
	must(t, err)
	defer strayIn.Close()
	must(t, stray.Start())
	strayDone := make(chan error, 1)
	go func() { strayDone <- stray.Wait() }()
	t.Cleanup(func() { _ = syscall.Kill(-stray.Process.Pid, syscall.SIGKILL) })
	// A process that only claims to be its monitor (any container can
	// write a command line) is not killed.
	fake := exec.Command("/bin/sh", "-c", "sleep 60", "--id", half.rec.ID)
	fake.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	must(t, fake.Start())
	fakeDone := make(chan error, 1)
	go func() { fakeDone <- fake.Wait() }()
	t.Cleanup(func() { _ = syscall.Kill(-fake.Process.Pid, syscall.SIGKILL) })

	e.m.Close() // berthd goes away; containers stay
	time.Sleep(2 * time.Second)
	m2, found, err := NewManager(ctx, e.opts)
	must(t, err)
	e.m = m2
	// The exit while away is returned, not told; nothing else changed.
	if len(found) != 1 || found[0].Step != StepExited || found[0].Container.ID() != dies.ID() {
		t.Errorf("restore found %v, want dies exited", found)
	}
	heard := len(e.notes.of("dies"))
	m2.Watch()
	r, err := m2.Get(running.ID())
	must(t, err)
	if got := r.Record(); got.State != StateRunning {
		t.Errorf("adopted running container is %s", got.State)
	}
	d, err := m2.Get(dies.ID())
	must(t, err)
	if got := waitExited(t, d); got.ExitCode != 4 {
		t.Errorf("exit while away: code %d", got.ExitCode)
	}
	// Watching again tells the exit no second time; a live exit is told.
	must(t, m2.Stop(ctx, r, 0))
	if got := e.notes.of("run"); !slices.Equal(got[len(got)-1:], []string{"exited"}) {
		t.Errorf("steps of the adopted container after its stop: %v", got)
	}
	if got := e.notes.of("dies"); len(got) != heard {
		t.Errorf("steps of the container that exited while away, after Watch: %v", got[heard:])
	}
	if _, err := m2.Get(half.rec.ID); err == nil {
		t.Error("half-created container restored")
	}
	if _, err := os.Stat(half.paths.dir); !os.IsNotExist(err) {
		t.Errorf("half-created container's record left: %v", err)
	}
	select {
	case <-strayDone:
	case <-time.After(5 * time.Second):
		t.Error("the half-created container's monitor still runs")
	}
	select {
	case err := <-fakeDone:
		t.Errorf("a process faking a monitor's command line was killed: %v", err)
	default:
	}
	must(t, m2.Stop(ctx, r, 0))
	if got := waitExited(t, r); got.ExitCode != 137 {
		t.Errorf("killed adopted container: code %d", got.ExitCode)
	}
}

func TestExecLeavesBackgroundProcess(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	c := e.create(t, &runtimeapi.ContainerConfig{Command: []string{"sleep", "60"}})
	must(t, e.m.Start(ctx, c))
	done := make(chan error, 1)
	go func() {
		_, err := e.m.ExecSync(ctx, c, []string{"sh", "-c", "sleep 30 &"}, 0)
		done <- err
	}()
	select {
	case err := <-done:
		must(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("ExecSync waits for a background process the command left")
	}
}

// A create the runtime refuses (no such command) leaves nothing: no
// record, no bundle, no runtime state, no cgroup; the rootfs is removed.
func TestFailedCreateLeavesNothing(t *testing.T) {
	e := newTestEnv(t)
	_, err := e.m.Create(context.Background(), &CreateRequest{
		Spec: SpecOptions{Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "x"}, Command: []string{"/no/such/binary"}},
			Host: e.opts.Host, Pod: &Pod{ID: "pod", CgroupParent: e.cgroups}},
		Runtime: e.rt,
	})
	if err == nil || !strings.Contains(err.Error(), "/no/such/binary") {
		t.Fatalf("create with a missing command: %v, want the runtime's error naming it", err)
	}
	if len(e.rootfs.removed) != 1 {
		t.Fatalf("rootfs removals = %v, want the failed container's", e.rootfs.removed)
	}
	id := e.rootfs.removed[0]
	p := e.m.paths(id)
	for _, path := range []string{p.dir, p.run, p.exit, filepath.Join(e.rt.Root, id), filepath.Join("/sys/fs/cgroup/memory", e.cgroups, "berth-"+id)} {
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("%s left behind (%v)", path, err)
		}
	}
	if e.m.Known(id) {
		t.Error("the failed container is known")
	}
	if got := e.notes.of("x"); !slices.Equal(got, []string{"create", "create failed"}) {
		t.Errorf("notifier heard %v of the failed create, want create, create failed", got)
	}
}

// A root filesystem no container owns (a crash between its creation and
// the container's first record) is removed at start; the others stay.
func TestRestoreSweepsRootfsNoContainerOwns(t *testing.T) {
	e := newTestEnv(t)
	c := e.create(t, &runtimeapi.ContainerConfig{Command: []string{"sleep", "60"}})
	orphan := testID()
	_, err := e.rootfs.CreateRootfs(context.Background(), orphan, "", "busybox", nil)
	must(t, err)
	e.m.Close()
	m2, _, err := NewManager(context.Background(), e.opts)
	must(t, err)
	e.m = m2
	m2.Watch()
	if !slices.Equal(e.rootfs.removed, []string{orphan}) {
		t.Errorf("removed at start: %v, want only the orphan %s", e.rootfs.removed, orphan)
	}
	if _, err := e.rootfs.MountContainerRootfs(c.ID()); err != nil {
		t.Errorf("the container's own: %v", err)
	}
}

// Reading a container's record (ListContainers, ContainerStatus) never
// waits for a runtime call: here the runtime's delete of an exited
// container blocks until the test has read the record.
func TestRecordDoesNotWaitForRuntime(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	dir := t.TempDir()
	inDelete, release := filepath.Join(dir, "in-delete"), filepath.Join(dir, "release")
	slow := filepath.Join(dir, "slow-runtime")
	script := "#!/bin/sh\nfor a; do [ \"$a\" = delete ] && { touch " + inDelete + "; while [ ! -e " + release + " ]; do sleep 0.05; done; }; done\nexec " + e.rt.Path + " \"$@\"\n"
	must(t, os.WriteFile(slow, []byte(script), 0o755))
	e.rt.Path = slow
	released := false
	releaseRuntime := func() {
		if !released {
			released = true
			must(t, os.WriteFile(release, nil, 0o644))
		}
	}
	t.Cleanup(releaseRuntime)
	c := e.create(t, &runtimeapi.ContainerConfig{Command: []string{"true"}})
	must(t, e.m.Start(ctx, c))
	// The exit watcher is now in the runtime's delete, and stays there.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(inDelete); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the exit watcher never called the runtime's delete")
		}
		time.Sleep(10 * time.Millisecond)
	}
	got := make(chan Record, 1)
	go func() { got <- c.Record() }()
	select {
	case r := <-got:
		if r.State != StateRunning {
			t.Errorf("state while the exit is being recorded: %s", r.State)
		}
	case <-time.After(30 * time.Second):
		t.Error("Record waits for the runtime's delete")
	}
	releaseRuntime()
	waitExited(t, c)
}

// At start, a record berthd cannot read, or whose state it does not know,
// costs nothing: that container is left alone (its files stay, its running
// process is not deleted) and every other container is restored.
func TestRestoreLeavesUnusableRecordsAlone(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	running := e.create(t, &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "run"}, Command: []string{"sleep", "60"}})
	must(t, e.m.Start(ctx, running))
	damaged := e.create(t, &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "damaged"}, Command: []string{"sleep", "60"}})
	must(t, e.m.Start(ctx, damaged))
	future := e.create(t, &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "future"}, Command: []string{"sleep", "60"}})
	must(t, e.m.Start(ctx, future))
	e.m.Close()

	must(t, os.WriteFile(damaged.paths.record(), []byte("{not json"), 0o600))
	rec := future.Record()
	rec.State = "paused-in-a-newer-berthd"
	b, err := json.Marshal(&rec)
	must(t, err)
	must(t, os.WriteFile(future.paths.record(), b, 0o600))

	m2, _, err := NewManager(ctx, e.opts)
	if err != nil {
		t.Fatalf("one unusable record stops the restore: %v", err)
	}
	e.m = m2
	m2.Watch()
	if _, err := m2.Get(running.ID()); err != nil {
		t.Errorf("the good container was not restored: %v", err)
	}
	for _, c := range []*Container{damaged, future} {
		if _, err := m2.Get(c.ID()); err == nil {
			t.Errorf("%s restored from an unusable record", c.ID())
		}
		if !m2.Known(c.ID()) {
			t.Errorf("%s is not known: its rootfs would be swept", c.ID())
		}
		for _, p := range []string{c.paths.record(), c.paths.run} {
			if _, err := os.Stat(p); err != nil {
				t.Errorf("%s: %s removed: %v", c.ID(), p, err)
			}
		}
		st, err := e.rt.State(ctx, c.ID())
		if err != nil || st.Status != "running" {
			t.Errorf("%s: the runtime's container is %v, %v; want still running", c.ID(), st, err)
		}
	}
	if slices.Contains(e.rootfs.removed, damaged.ID()) || slices.Contains(e.rootfs.removed, future.ID()) {
		t.Errorf("rootfs removed: %v", e.rootfs.removed)
	}
	// Clean up by hand, as the person reading the log would.
	for _, c := range []*Container{damaged, future} {
		_ = e.rt.Delete(ctx, c.ID())
		os.RemoveAll(c.paths.dir)
		os.RemoveAll(c.paths.run)
	}
}

// A live process at the recorded monitor pid is the monitor only if it
// runs the monitor binary and started when the monitor did.
func TestIsMonitor(t *testing.T) {
	mon, _ := requireRuntime(t)
	id := testID()
	fake := exec.Command("/bin/sh", "-c", "sleep 60", "--id", id)
	must(t, fake.Start())
	t.Cleanup(func() { fake.Process.Kill(); fake.Wait() })
	if isMonitor(fake.Process.Pid, 0, mon, id) {
		t.Error("a shell with the monitor's command line counts as the monitor")
	}
	real := exec.Command(mon, "--id", id)
	in, err := real.StdinPipe()
	must(t, err)
	must(t, real.Start())
	t.Cleanup(func() { in.Close(); real.Process.Kill(); real.Wait() })
	// Start returns once the exec is under way; the kernel fills in the
	// new command line a moment later.
	waitCmdline(t, real.Process.Pid)
	start, err := procStartTime(real.Process.Pid)
	must(t, err)
	if !isMonitor(real.Process.Pid, start, mon, id) || !isMonitor(real.Process.Pid, 0, mon, id) {
		t.Error("the real monitor is not recognised")
	}
	if isMonitor(real.Process.Pid, start+1, mon, id) {
		t.Error("a monitor started at another time counts (a reused pid)")
	}
	if isMonitor(real.Process.Pid, 0, mon, testID()) {
		t.Error("another container's monitor counts")
	}
}

// waitCmdline waits until pid's command line is readable (set by exec).
func waitCmdline(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && len(b) > 0 {
			return
		}
	}
	t.Fatalf("process %d has no command line after 5s", pid)
}
