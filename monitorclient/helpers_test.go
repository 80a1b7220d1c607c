package monitorclient_test

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
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-cri/berth/monitorclient"
)

const (
	runcPath  = "/usr/sbin/runc"
	buildTags = "containers_image_openpgp exclude_graphdriver_btrfs exclude_graphdriver_devicemapper seccomp"
	// helperEnv makes the test binary act as a short-lived berthd that
	// starts a monitor and exits (TestSurvivesCallerDeath).
	helperEnv = "BERTH_MONITOR_TEST_HELPER"
)

// monitorBin is berth-monitor built once by TestMain (empty when not root).
var monitorBin string

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(runStartHelper())
	}
	code := func() int {
		if bin := os.Getenv("BERTH_TEST_MONITOR_BIN"); bin != "" {
			// A prebuilt monitor, e.g. one built with -race.
			monitorBin = bin
		} else if os.Geteuid() == 0 {
			dir, err := os.MkdirTemp("", "berth-monitor-bin-")
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer os.RemoveAll(dir)
			monitorBin = filepath.Join(dir, "berth-monitor")
			// Built as the Makefile builds it, so BenchmarkMonitorMemory
			// measures what ships.
			cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-trimpath", "-ldflags", "-s -w", "-tags", buildTags, "-o", monitorBin, "github.com/berth-cri/berth/cmd/berth-monitor")
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOEXPERIMENT=nogreenteagc")
			if out, err := cmd.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "build berth-monitor: %v\n%s", err, out)
				return 1
			}
		}
		defer removeTestCgroups()
		return m.Run()
	}()
	os.Exit(code)
}

// testCgroupParent holds the test containers' cgroups; runc removes each
// container's own, not this parent.
const testCgroupParent = "berth-monitor-test"

func removeTestCgroups() {
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", testCgroupParent))
	dirs = append(dirs, filepath.Join("/sys/fs/cgroup", testCgroupParent)) // cgroup v2 hosts
	for _, d := range dirs {
		_ = syscall.Rmdir(d)
	}
}

// runStartHelper starts a monitor for the config in $helperEnv, prints
// what Start returned and exits, leaving the monitor orphaned.
func runStartHelper() int {
	var in struct {
		Binary string
		Config monitorclient.Config
	}
	if err := json.Unmarshal([]byte(os.Getenv(helperEnv)), &in); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := monitorclient.Start(ctx, in.Binary, in.Config)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	json.NewEncoder(os.Stdout).Encode(st)
	return 0
}

func requireRunc(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs containers with runc")
	}
	if _, err := os.Stat(runcPath); err != nil {
		t.Skipf("needs %s: %v", runcPath, err)
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skipf("needs Debian's busybox-static at /bin/busybox: %v", err)
	}
}

// ctr is one test container: its bundle, runc root and monitor config.
type ctr struct {
	t       testing.TB
	dir     string
	cfg     monitorclient.Config
	started *monitorclient.Started
}

// newCtr prepares a busybox bundle running args. mutate edits the spec.
func newCtr(t testing.TB, args []string, mutate func(*specs.Spec)) *ctr {
	t.Helper()
	requireRunc(t)
	dir := t.TempDir()
	id := fmt.Sprintf("bm-%s-%s", strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")), randHex(4))
	if len(id) > 60 {
		id = id[:51] + "-" + randHex(4)
	}
	bundle := filepath.Join(dir, "bundle")
	run := filepath.Join(dir, "run")
	for _, d := range []string{filepath.Join(bundle, "rootfs", "bin"), run} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	makeRootfs(t, filepath.Join(bundle, "rootfs"))
	writeSpec(t, bundle, args, mutate)
	c := &ctr{t: t, dir: dir, cfg: monitorclient.Config{
		ID:             id,
		Bundle:         bundle,
		RuntimePath:    runcPath,
		RuntimeRoot:    filepath.Join(dir, "runc"),
		PidFile:        filepath.Join(run, "pid"),
		ExitFile:       filepath.Join(run, "exit"),
		LogPath:        filepath.Join(run, "ctr.log"),
		AttachSocket:   filepath.Join(run, "attach"),
		ControlSocket:  filepath.Join(run, "control"),
		MonitorLogPath: filepath.Join(run, "monitor.log"),
	}}
	t.Cleanup(func() {
		// Whatever happened: no container, no monitor left.
		exec.Command(runcPath, "--root", c.cfg.RuntimeRoot, "delete", "--force", c.cfg.ID).Run()
		if c.started != nil && isMonitor(c.started.MonitorPID, c.cfg.ID) {
			syscall.Kill(c.started.MonitorPID, syscall.SIGKILL)
		}
		if t.Failed() {
			if b, err := os.ReadFile(c.cfg.MonitorLogPath); err == nil && len(b) > 0 {
				t.Logf("monitor log:\n%s", b)
			}
		}
	})
	return c
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// makeRootfs puts Debian's static busybox and its applet links in rootfs.
func makeRootfs(t testing.TB, rootfs string) {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin", "busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"sh", "cat", "echo", "sleep", "dd", "head", "tr", "printf", "stty", "kill", "true", "seq", "ls"} {
		if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"proc", "dev", "sys", "tmp"} {
		os.MkdirAll(filepath.Join(rootfs, d), 0o755)
	}
}

// writeSpec writes config.json: runc's default spec, running args.
func writeSpec(t testing.TB, bundle string, args []string, mutate func(*specs.Spec)) {
	t.Helper()
	if out, err := exec.Command(runcPath, "spec", "--bundle", bundle).CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v: %s", err, out)
	}
	p := filepath.Join(bundle, "config.json")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	s.Process.Terminal = false
	s.Process.Args = args
	s.Process.Env = []string{"PATH=/bin"}
	s.Linux.CgroupsPath = "/" + testCgroupParent + "/" + filepath.Base(filepath.Dir(bundle)) + randHex(4)
	if mutate != nil {
		mutate(&s)
	}
	if b, err = json.Marshal(&s); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (c *ctr) start() *monitorclient.Started {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := monitorclient.Start(ctx, monitorBin, c.cfg)
	if err != nil {
		c.t.Fatalf("monitor.Start: %v", err)
	}
	c.started = st
	return st
}

func (c *ctr) runc(args ...string) string {
	c.t.Helper()
	out, err := exec.Command(runcPath, append([]string{"--root", c.cfg.RuntimeRoot}, args...)...).CombinedOutput()
	if err != nil {
		c.t.Fatalf("runc %v: %v: %s", args, err, out)
	}
	return string(out)
}

// run starts the created container.
func (c *ctr) run() { c.t.Helper(); c.runc("start", c.cfg.ID) }

func (c *ctr) wait() *monitorclient.Exit {
	c.t.Helper()
	// A guard against a hang, not a measure: twice, in the race lane of a
	// cold CI run (Kubernetes building beside it), an exit took over 2
	// minutes to be reported (monitor alive, no exit file yet); it never
	// did under CPU load alone. A failure says what the monitor logged and
	// what the runtime thinks.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pid := 0
	if c.started != nil {
		pid = c.started.MonitorPID
	}
	// The pid is checked as berthd checks it (there by its recorded
	// start time), so the tests wait as berthd's watchers do.
	e, err := monitorclient.WaitExit(ctx, c.cfg.ExitFile, pid, func() bool { return isMonitor(pid, c.cfg.ID) })
	if err != nil {
		mlog, _ := os.ReadFile(c.cfg.MonitorLogPath)
		state, _ := exec.Command(c.cfg.RuntimePath, "--root", c.cfg.RuntimeRoot, "state", c.cfg.ID).CombinedOutput()
		c.t.Fatalf("WaitExit: %v\nmonitor %d alive: %v; its log:\n%s\nruntime state: %s", err, pid,
			pid > 0 && isMonitor(pid, c.cfg.ID), mlog, state)
	}
	return e
}

func (c *ctr) log() string {
	c.t.Helper()
	b, err := os.ReadFile(c.cfg.LogPath)
	if err != nil {
		c.t.Fatal(err)
	}
	return string(b)
}

// waitFor polls cond until it holds or a minute passes (a hang guard, not
// a speed check).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// isMonitor tells whether pid is a live berth-monitor for id.
func isMonitor(pid int, id string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(string(b), "\x00")
	return len(args) >= 3 && filepath.Base(args[0]) == "berth-monitor" && args[2] == id && procState(pid) != "Z"
}

// procStat returns a process's state letter and parent pid.
func procStat(pid int) (state string, ppid int) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ppid, _ = strconv.Atoi(f[1])
	return f[0], ppid
}

func procState(pid int) string { s, _ := procStat(pid); return s }

// childrenOf lists pids whose parent is ppid, with their state and comm.
func childrenOf(ppid int) map[int]string {
	out := map[int]string{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, pp := procStat(pid); pp == ppid {
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			out[pid] = st + " " + strings.TrimSpace(string(comm))
		}
	}
	return out
}

// records returns the log's records as "stream tag text".
func records(t testing.TB, log string) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(strings.TrimSuffix(log, "\n"), "\n") {
		if l == "" {
			continue
		}
		f := strings.SplitN(l, " ", 4)
		if len(f) != 4 {
			t.Fatalf("malformed record %q", l)
		}
		if _, err := time.Parse(time.RFC3339Nano, f[0]); err != nil || len(f[0]) != len("2016-10-06T00:17:09.669794202Z") {
			t.Fatalf("bad timestamp in %q: %v", l, err)
		}
		out = append(out, f[1]+" "+f[2]+" "+f[3])
	}
	return out
}

func stream(recs []string, name string) []string {
	var out []string
	for _, r := range recs {
		if strings.HasPrefix(r, name+" ") {
			out = append(out, r)
		}
	}
	return out
}

// catches says whether pid has a handler for sig (SigCgt in its status).
func catches(pid int, sig syscall.Signal) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "SigCgt:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && mask&(1<<(uint(sig)-1)) != 0
		}
	}
	return false
}
