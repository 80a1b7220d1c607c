package conformance

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go/features"
)

func TestLifecycleStateKillDelete(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *ociRuntime) {
		c := newContainer(t, rt)
		c.spec.Annotations = map[string]string{"org.berth.test": "yes"}
		// pid 1 ignores signals it has no handler for: trap TERM.
		c.spec.Process.Args = []string{"sh", "-c", `trap "exit 3" TERM; echo ready > /tmp/ready; while :; do sleep 0.05; done`}
		c.create()

		st, r := c.state()
		if r.code != 0 {
			t.Fatalf("state: %s", r)
		}
		bundle, _ := filepath.EvalSymlinks(c.bundle)
		if st.ID != c.id || st.Status != "created" || st.Pid != c.pid || st.Bundle != bundle ||
			st.Annotations["org.berth.test"] != "yes" || st.Version == "" {
			t.Fatalf("state after create: %+v (want id %s, created, pid %d, bundle %s)", st, c.id, c.pid, bundle)
		}
		// The init waits on the exec fifo, blocked in the kernel, not
		// spinning. On a loaded machine it may still be runnable for a
		// moment after create returns; a spinning init never sleeps.
		if s := waitProcState(c.pid, "S", 2*time.Second); s != "S" {
			t.Errorf("the created init is in state %q, want S (sleeping)", s)
		}
		if r := rt.run("delete", c.id); r.code != 0 {
			// deleting a created container is allowed (it kills the init)
			t.Fatalf("delete of a created container: %s", r)
		}
		if _, r := c.state(); r.code == 0 {
			t.Fatalf("state after delete succeeded")
		}
		reap(c.pid, 5*time.Second)

		c = newContainer(t, rt)
		c.spec.Process.Args = []string{"sh", "-c", `trap "exit 3" TERM; while :; do sleep 0.05; done`}
		c.create()
		c.start()
		if s := c.status(); s != "running" {
			t.Fatalf("status after start: %s", s)
		}
		if r := rt.run("start", c.id); r.code == 0 {
			t.Errorf("a second start succeeded")
		}
		if r := rt.run("delete", c.id); r.code == 0 {
			t.Fatalf("delete of a running container without --force succeeded")
		}
		c.waitTrapped(syscall.SIGTERM)
		if r := rt.run("kill", c.id); r.code != 0 { // SIGTERM by default
			t.Fatalf("kill: %s", r)
		}
		if code := c.wait(10 * time.Second); code != 3 {
			t.Fatalf("exit code %d after SIGTERM, want 3 from the trap", code)
		}
		if s := c.status(); s != "stopped" {
			t.Fatalf("status after exit: %s", s)
		}
		if st, _ := c.state(); st.Pid != 0 {
			t.Errorf("a stopped container reports pid %d", st.Pid)
		}
		if r := rt.run("kill", c.id, "KILL"); r.code == 0 {
			t.Errorf("kill of a stopped container succeeded")
		}
		if r := rt.run("start", c.id); r.code == 0 {
			t.Errorf("start of a stopped container succeeded")
		}
		rt.mustRun(t, "delete", c.id)
		if dir := filepath.Join(rt.root, c.id); exists(dir) {
			t.Errorf("state directory %s left after delete", dir)
		}
		if dir := "/sys/fs/cgroup/memory/" + cgroupBase + "/" + c.id; isCgroupV1() && exists(dir) {
			t.Errorf("cgroup %s left after delete", dir)
		}
	})
}

func TestKillSignalsAndForceDelete(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *ociRuntime) {
		c := newContainer(t, rt)
		c.spec.Process.Args = []string{"sh", "-c", `trap "exit 10" USR1; while :; do sleep 0.05; done`}
		c.create()
		c.start()
		c.waitTrapped(syscall.SIGUSR1)
		rt.mustRun(t, "kill", c.id, "USR1")
		if code := c.wait(10 * time.Second); code != 10 {
			t.Fatalf("exit %d after SIGUSR1, want 10", code)
		}
		rt.mustRun(t, "delete", c.id)

		c = newContainer(t, rt)
		c.startSleeping()
		rt.mustRun(t, "delete", "--force", c.id)
		if code := c.wait(10 * time.Second); code != 137 {
			t.Fatalf("exit %d after delete --force, want 137 (SIGKILL)", code)
		}
		if _, r := c.state(); r.code == 0 {
			t.Fatalf("state after delete --force succeeded")
		}
		if r := rt.run("kill", c.id, "9"); r.code == 0 {
			t.Errorf("kill of a deleted container succeeded")
		}
	})
}

func TestErrorsAsRunc(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *ociRuntime) {
		r := rt.run("state", "no-such-container")
		if r.code != 1 || !strings.Contains(r.stderr, "container does not exist") {
			t.Errorf("state of a missing container: %s", r)
		}
		log := filepath.Join(t.TempDir(), "log.json")
		r = rt.run("--log", log, "--log-format", "json", "delete", "no-such-container")
		if r.code != 1 || !strings.Contains(r.stderr, "container does not exist") {
			t.Errorf("delete of a missing container: %s", r)
		}
		var entry struct{ Level, Msg, Time string }
		lines := strings.Split(strings.TrimSpace(readFile(log)), "\n")
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &entry); err != nil || entry.Level != "error" ||
			entry.Msg != "container does not exist" || entry.Time == "" {
			t.Errorf("--log-format json: last line %q (%v)", lines[len(lines)-1], err)
		}
		if r := rt.run("kill"); r.code != 1 {
			t.Errorf("kill without an id: %s", r)
		}
		if r := rt.run("state", "--bogus", "x"); r.code != 1 || !strings.Contains(r.stderr, "flag provided but not defined: -bogus") {
			t.Errorf("unknown flag: %s", r)
		}
		c := newContainer(t, rt)
		c.spec.Process.Cwd = "relative"
		if r := c.tryCreate(); r.code != 1 || !strings.Contains(r.stderr, "Cwd must be an absolute path") {
			t.Errorf("create with a relative cwd: %s", r)
		}
		c = newContainer(t, rt)
		c.spec.Process.Args = []string{"/no/such/binary"}
		if r := c.tryCreate(); r.code != 1 || !strings.Contains(r.stderr, `exec: \"/no/such/binary\": stat /no/such/binary: no such file or directory`) {
			t.Errorf("create with a missing binary: %s", r)
		}
	})
}

func TestExec(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *ociRuntime) {
		c := newContainer(t, rt)
		c.startSleeping()
		r := c.exec([]string{"--env", "A=1", "--env", "B=2", "--cwd", "/tmp", "--user", "1000:1001"},
			"sh", "-c", "echo $A$B; pwd; id -u; id -g; exit 7")
		if r.code != 7 || r.stdout != "12\n/tmp\n1000\n1001\n" {
			t.Fatalf("exec: %s", r)
		}
		proc := filepath.Join(t.TempDir(), "process.json")
		if err := os.WriteFile(proc, []byte(`{"args":["sh","-c","echo from-process-json"],"cwd":"/","env":["PATH=/bin"],"user":{"uid":0,"gid":0}}`), 0o644); err != nil {
			t.Fatal(err)
		}
		if r := c.exec([]string{"--process", proc}); r.code != 0 || r.stdout != "from-process-json\n" {
			t.Fatalf("exec --process: %s", r)
		}
		if r := c.exec(nil, "/no/such/binary"); r.code == 0 {
			t.Fatalf("exec of a missing binary succeeded: %s", r)
		}
		r = rt.run("ps", "--format", "json", c.id)
		var pids []int
		if err := json.Unmarshal([]byte(r.stdout), &pids); err != nil || len(pids) != 1 || pids[0] != c.pid {
			t.Errorf("ps --format json: %s (want [%d])", r, c.pid)
		}
		r = rt.run("list", "--format", "json")
		if !strings.Contains(r.stdout, `"id":"`+c.id+`"`) {
			t.Errorf("list: %s", r)
		}
	})
}

func TestFeatures(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *ociRuntime) {
		var f features.Features
		out := rt.mustRun(t, "features")
		if err := json.Unmarshal([]byte(out), &f); err != nil {
			t.Fatalf("features is not JSON: %v", err)
		}
		if f.OCIVersionMin == "" || f.OCIVersionMax == "" || f.Linux == nil || len(f.Linux.Namespaces) < 7 || len(f.Hooks) < 6 {
			t.Errorf("features: %s", out)
		}
	})
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// procState is the state letter of a process in /proc/PID/stat.
func procState(pid int) string {
	b, err := os.ReadFile("/proc/" + itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// waitProcState polls pid's state until it is want or timeout passes, and
// returns the last state seen.
func waitProcState(pid int, want string, timeout time.Duration) string {
	deadline := time.Now().Add(timeout)
	for {
		s := procState(pid)
		if s == want || time.Now().After(deadline) {
			return s
		}
		time.Sleep(10 * time.Millisecond)
	}
}
