package conformance

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var ctrSeq atomic.Int64

// container is one container of a runtime, removed when its test ends.
type container struct {
	t      *testing.T
	rt     *ociRuntime
	id     string
	bundle string
	spec   *specs.Spec
	pid    int
	stdout string // files the container's stdio goes to (with create's)
	stderr string
	exited bool
	code   int
	extra  []int // detached exec'd processes, reparented to us

	extraFiles []*os.File // given to create as fds 3... (with --preserve-fds)
}

// newContainer prepares a container with the base spec; the test edits
// c.spec before create.
func newContainer(t *testing.T, rt *ociRuntime) *container {
	t.Helper()
	dir, spec := newBundle(t)
	id := fmt.Sprintf("c%d-%d", os.Getpid(), ctrSeq.Add(1))
	spec.Linux.CgroupsPath = "/" + cgroupBase + "/" + id
	c := &container{t: t, rt: rt, id: id, bundle: dir, spec: spec,
		stdout: filepath.Join(dir, "stdout"), stderr: filepath.Join(dir, "stderr")}
	t.Cleanup(c.remove)
	return c
}

func (c *container) rootfs() string { return filepath.Join(c.bundle, "rootfs") }

// tryCreate writes the spec and runs `create`; the container's stdio (and
// the runtime's own messages) go to files in the bundle.
func (c *container) tryCreate(extra ...string) result {
	c.t.Helper()
	writeSpec(c.t, c.bundle, c.spec)
	out, err := os.Create(c.stdout)
	if err != nil {
		c.t.Fatal(err)
	}
	defer out.Close()
	errf, err := os.Create(c.stderr)
	if err != nil {
		c.t.Fatal(err)
	}
	defer errf.Close()
	devnull, _ := os.Open(os.DevNull)
	defer devnull.Close()
	pidFile := filepath.Join(c.bundle, "pid")
	args := append([]string{"create", "--bundle", c.bundle, "--pid-file", pidFile}, extra...)
	cmd := c.rt.command(append(args, c.id)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, out, errf
	cmd.ExtraFiles = c.extraFiles
	err = cmd.Run()
	r := result{err: err}
	if err != nil {
		r.code = -1
		if ee, ok := err.(interface{ ExitCode() int }); ok {
			r.code = ee.ExitCode()
		}
		r.stderr = readFile(c.stderr)
		return r
	}
	if b, err := os.ReadFile(pidFile); err == nil {
		c.pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if c.pid <= 0 {
		c.t.Fatalf("%s create: no pid in --pid-file", c.rt.name)
	}
	return r
}

func (c *container) create(extra ...string) {
	c.t.Helper()
	if r := c.tryCreate(extra...); r.code != 0 {
		c.t.Fatalf("%s create: %s", c.rt.name, r)
	}
}

func (c *container) start() {
	c.t.Helper()
	c.rt.mustRun(c.t, "start", c.id)
}

// wait waits for the init (our child, as we are a subreaper) and returns
// its exit code, 128+signal when killed.
func (c *container) wait(timeout time.Duration) int {
	c.t.Helper()
	if c.exited {
		return c.code
	}
	done := make(chan error, 1)
	var ws unix.WaitStatus
	go func() {
		_, err := unix.Wait4(c.pid, &ws, 0, nil)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			c.t.Fatalf("wait4(%d): %v (the init was not reparented to the test process)", c.pid, err)
		}
	case <-time.After(timeout):
		_ = unix.Kill(c.pid, unix.SIGKILL)
		<-done
		c.t.Fatalf("container did not exit within %v; stdout: %s stderr: %s", timeout, readFile(c.stdout), readFile(c.stderr))
	}
	c.exited = true
	switch {
	case ws.Exited():
		c.code = ws.ExitStatus()
	case ws.Signaled():
		c.code = 128 + int(ws.Signal())
	}
	return c.code
}

// runArgs runs args as the container's process to its end: create, start,
// wait. It returns stdout and the exit code.
func (c *container) runArgs(args ...string) (string, int) {
	c.t.Helper()
	c.spec.Process.Args = args
	c.create()
	c.start()
	code := c.wait(30 * time.Second)
	return readFile(c.stdout), code
}

// sh runs a shell script in the container and fails unless it exits 0.
func (c *container) sh(script string) string {
	c.t.Helper()
	out, code := c.runArgs("sh", "-c", script)
	if code != 0 {
		c.t.Fatalf("%s: script exited %d\nscript: %s\nstdout: %s\nstderr: %s", c.rt.name, code, script, out, readFile(c.stderr))
	}
	return out
}

// startSleeping starts a container whose init sleeps until killed.
func (c *container) startSleeping() {
	c.t.Helper()
	c.spec.Process.Args = []string{"sleep", "1000"}
	c.create()
	c.start()
}

// exec runs `exec` with args (flags, then the id is inserted before cmd).
func (c *container) exec(flags []string, cmd ...string) result {
	c.t.Helper()
	args := append(append([]string{"exec"}, flags...), c.id)
	return c.rt.run(append(args, cmd...)...)
}

// state returns `state` output.
func (c *container) state() (specs.State, result) {
	c.t.Helper()
	r := c.rt.run("state", c.id)
	var st specs.State
	if r.code == 0 {
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
			c.t.Fatalf("state is not JSON: %v: %s", err, r.stdout)
		}
	}
	return st, r
}

func (c *container) status() string {
	c.t.Helper()
	st, r := c.state()
	if r.code != 0 {
		c.t.Fatalf("state: %s", r)
	}
	return string(st.Status)
}

// remove deletes the container whatever its state, reaps its init, and
// removes its cgroups.
func (c *container) remove() {
	if len(c.extra) > 0 {
		// A PID namespace's dying init waits for all its processes to be
		// reaped, and the exec'd ones are our children: reap them first.
		c.rt.run("kill", c.id, "KILL")
		for _, pid := range c.extra {
			reap(pid, 2*time.Second)
		}
	}
	c.rt.run("delete", "--force", c.id)
	if c.pid > 0 && !c.exited {
		reap(c.pid, time.Second)
	}
	removeCgroups(cgroupBase + "/" + c.id)
}

// reap waits for a child of ours to end, for at most d.
func reap(pid int, d time.Duration) {
	var ws unix.WaitStatus
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if p, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); p == pid || err != nil {
			return
		}
	}
}

// execDetached runs `exec --detach` and records the process for reaping.
func (c *container) execDetached(flags []string, cmd ...string) result {
	c.t.Helper()
	pidFile := filepath.Join(c.bundle, fmt.Sprintf("exec-%d.pid", len(c.extra)))
	outFile := filepath.Join(c.bundle, fmt.Sprintf("exec-%d.out", len(c.extra)))
	out, err := os.Create(outFile)
	if err != nil {
		c.t.Fatal(err)
	}
	defer out.Close()
	args := append(append([]string{"exec"}, flags...), "--detach", "--pid-file", pidFile, c.id)
	command := c.rt.command(append(args, cmd...)...)
	// the detached process keeps its stdio: files, not pipes we wait on
	command.Stdout, command.Stderr = out, out
	err = command.Run()
	r := result{err: err, stdout: readFile(outFile)}
	if err != nil {
		r.code = -1
		if ee, ok := err.(interface{ ExitCode() int }); ok {
			r.code = ee.ExitCode()
		}
	}
	if b, err := os.ReadFile(pidFile); err == nil {
		if pid := atoi(string(b)); pid > 0 {
			c.extra = append(c.extra, pid)
		}
	}
	return r
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// cgroupMounts lists the cgroup hierarchies (v1 and v2) of the host.
func cgroupMounts() []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var dirs []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 10 {
			continue
		}
		sep := 6
		for sep < len(f) && f[sep] != "-" {
			sep++
		}
		if sep+1 < len(f) && (f[sep+1] == "cgroup" || f[sep+1] == "cgroup2") {
			dirs = append(dirs, f[4])
		}
	}
	return dirs
}

func removeCgroups(rel string) {
	for _, m := range cgroupMounts() {
		_ = unix.Rmdir(filepath.Join(m, rel))
	}
}

func removeCgroupBase() { removeCgroups(cgroupBase) }

// waitTrapped waits until the container's init has a handler for sig: a
// pid 1 ignores a signal it has none for, so a signal sent before the
// shell set its trap would be lost.
func (c *container) waitTrapped(sig syscall.Signal) {
	c.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		for _, line := range strings.Split(readFile("/proc/"+itoa(c.pid)+"/status"), "\n") {
			if v, ok := strings.CutPrefix(line, "SigCgt:"); ok {
				if mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64); err == nil && mask&(1<<(uint(sig)-1)) != 0 {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: the container's shell did not trap %v within a minute", c.rt.name, sig)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
