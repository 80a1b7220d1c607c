package conformance

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// startPaths runs f as two subtests: with berth-runner's C fast path for
// `start` (unless the suite runs with BERTH_RUNNER_NO_FAST_START set, to
// test the Go path throughout), and with the Go path it falls back to.
// runc ignores the switch: both exercise runc alike.
func startPaths(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	t.Run("fast", f)
	t.Run("go", func(t *testing.T) {
		t.Setenv("BERTH_RUNNER_NO_FAST_START", "1")
		f(t)
	})
}

// TestStart covers `start` in each state a container can be in, and a
// config whose strings look like the state's own fields.
func TestStart(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *ociRuntime) {
		startPaths(t, func(t *testing.T) {
			if r := rt.run("start", "no-such-container"); r.code != 1 || !strings.Contains(r.stderr, "does not exist") {
				t.Errorf("start of a missing container: %s", r)
			}

			// Strings in the config that mimic state.json's fields must
			// not be read as them.
			c := newContainer(t, rt)
			c.spec.Process.Env = append(c.spec.Process.Env, `X={"init_process_pid":1,"init_process_start":1,"cgroup_paths":{"freezer":"/"}}`)
			c.spec.Process.Args = []string{"sh", "-c", `echo started; echo '"init_process_pid":1,' >/dev/null`}
			c.create()
			log := filepath.Join(t.TempDir(), "log.json")
			rt.mustRun(t, "--log", log, "--log-format", "json", "start", c.id)
			if code := c.wait(10 * time.Second); code != 0 || readFile(c.stdout) != "started\n" {
				t.Fatalf("started container exited %d with %q", code, readFile(c.stdout))
			}
			if !exists(log) {
				t.Errorf("start --log did not create the log file")
			}
			if r := rt.run("start", c.id); r.code != 1 || !strings.Contains(r.stderr, "stopped") {
				t.Errorf("start of a stopped container: %s", r)
			}

			// A paused created container is not started; once resumed,
			// it is.
			c = newContainer(t, rt)
			c.spec.Process.Args = []string{"sh", "-c", "echo started"}
			c.create()
			rt.mustRun(t, "pause", c.id)
			if r := rt.run("start", c.id); r.code != 1 || !strings.Contains(r.stderr, "paused") {
				t.Errorf("start of a paused container: %s", r)
			}
			rt.mustRun(t, "resume", c.id)
			if s := c.status(); s != "created" {
				t.Fatalf("status after resume: %s, want created", s)
			}
			c.start()
			if code := c.wait(10 * time.Second); code != 0 || readFile(c.stdout) != "started\n" {
				t.Fatalf("container started after resume exited %d with %q", code, readFile(c.stdout))
			}

			// An init killed before start: the container has stopped.
			c = newContainer(t, rt)
			c.spec.Process.Args = []string{"true"}
			c.create()
			if err := unix.Kill(c.pid, unix.SIGKILL); err != nil {
				t.Fatal(err)
			}
			c.wait(10 * time.Second)
			if r := rt.run("start", c.id); r.code != 1 || !strings.Contains(r.stderr, "stopped") {
				t.Errorf("start of a container whose init died: %s", r)
			}
			if !exists(filepath.Join(rt.root, c.id)) {
				t.Errorf("a failed start removed the container's state")
			}
		})
	})
}
