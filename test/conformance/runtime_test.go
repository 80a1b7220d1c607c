package conformance

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// ociRuntime is one runtime binary under test, with its own state root.
type ociRuntime struct {
	name         string
	path         string
	root         string
	major, minor int // runc's version, to skip what an old runc lacks
}

func newRuntime(name, path string) *ociRuntime {
	rt := &ociRuntime{name: name, path: path, root: filepath.Join(workDir, "state-"+name)}
	if out, err := exec.Command(path, "--version").Output(); err == nil {
		if m := regexp.MustCompile(`(?m)^runc version (\d+)\.(\d+)`).FindSubmatch(out); m != nil {
			rt.major, _ = strconv.Atoi(string(m[1]))
			rt.minor, _ = strconv.Atoi(string(m[2]))
		}
	}
	return rt
}

// isRuncBefore reports a runc older than major.minor.
func (rt *ociRuntime) isRuncBefore(major, minor int) bool {
	return rt.major != 0 && (rt.major < major || rt.major == major && rt.minor < minor)
}

// skipIfRuncBefore skips what an older runc does not implement, saying so.
func (rt *ociRuntime) skipIfRuncBefore(t *testing.T, major, minor int, what string) {
	t.Helper()
	if rt.isRuncBefore(major, minor) {
		t.Skipf("runc %d.%d lacks %s (added in runc %d.%d)", rt.major, rt.minor, what, major, minor)
	}
}

// command builds "<runtime> --root <root> args...".
func (rt *ociRuntime) command(args ...string) *exec.Cmd {
	return exec.Command(rt.path, append([]string{"--root", rt.root}, args...)...)
}

// result of one runtime command.
type result struct {
	stdout, stderr string
	code           int
	err            error
}

func (r result) String() string {
	return "exit " + strconv.Itoa(r.code) + "; stdout: " + r.stdout + "; stderr: " + r.stderr
}

// run runs a runtime command with stdin from /dev/null and captured output.
func (rt *ociRuntime) run(args ...string) result {
	cmd := rt.command(args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	devnull, _ := os.Open(os.DevNull)
	defer devnull.Close()
	cmd.Stdin = devnull
	// A detached process that inherited our pipes must not hang the test.
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String(), err: err}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		r.code = -1
	}
	return r
}

// mustRun fails the test unless the command exits 0.
func (rt *ociRuntime) mustRun(t *testing.T, args ...string) string {
	t.Helper()
	r := rt.run(args...)
	if r.code != 0 {
		t.Fatalf("%s %v: %s", rt.name, args, r)
	}
	return r.stdout
}
