// Package conformance checks OCI runtimes against the runtime-spec from the
// inside: each test runs a busybox container and reads /proc/self/*, files
// and exit codes. Every test runs against each runtime in the list, as a
// subtest named after it: berth-runner (built here, or BERTH_RUNTIME, or
// $BERTH_TEST_BINDIR/berth-runner) and, when present, Debian's runc
// (BERTH_CONFORMANCE_RUNC, default /usr/sbin/runc; "none" to leave it out),
// and any in BERTH_CONFORMANCE_EXTRA ("name=/path,name2=/path2"), e.g. an
// upstream runc build to compare the same libcontainer version.
//
// The tests need root, a busybox (BERTH_BUSYBOX, default /bin/busybox, which
// must be static) and cgroups; they skip, saying why, without them.
package conformance

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// buildTags are the integrator's (see the Makefile).
const buildTags = "containers_image_openpgp exclude_graphdriver_btrfs exclude_graphdriver_devicemapper seccomp netgo osusergo"

var (
	runtimes   []*ociRuntime
	skipReason string // set when the whole suite cannot run here
	busybox    string
	workDir    string // 0755 base for bundles and state, so user namespaces can traverse it
	cgroupBase = "berth-conformance-" + fmt.Sprint(os.Getpid())
)

func TestMain(m *testing.M) {
	code := setup()
	if code == 0 {
		code = m.Run()
	}
	teardown()
	os.Exit(code)
}

func setup() int {
	if os.Geteuid() != 0 {
		skipReason = "the conformance suite needs root (namespaces, mounts, cgroups)"
		return 0
	}
	if runtime.GOOS != "linux" {
		skipReason = "linux only"
		return 0
	}
	busybox = os.Getenv("BERTH_BUSYBOX")
	if busybox == "" {
		busybox = "/bin/busybox"
	}
	if !isStatic(busybox) {
		skipReason = fmt.Sprintf("%s is missing or not a static binary (apt-get install busybox-static, or set BERTH_BUSYBOX)", busybox)
		return 0
	}
	// Container inits outlive `create`; as a subreaper we become their
	// parent, like a CRI monitor, and can wait for their exit status.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "PR_SET_CHILD_SUBREAPER:", err)
		return 1
	}
	var err error
	if workDir, err = os.MkdirTemp("", "berth-conformance-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := os.Chmod(workDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	berth, err := berthRunner()
	if err != nil {
		fmt.Fprintln(os.Stderr, "building berth-runner:", err)
		return 1
	}
	runtimes = append(runtimes, newRuntime("berth-runner", berth))
	runc := os.Getenv("BERTH_CONFORMANCE_RUNC")
	if runc == "" {
		runc = "/usr/sbin/runc"
	}
	if runc != "none" {
		if _, err := os.Stat(runc); err == nil {
			runtimes = append(runtimes, newRuntime("runc", runc))
		}
	}
	for _, kv := range strings.Split(os.Getenv("BERTH_CONFORMANCE_EXTRA"), ",") {
		if name, path, ok := strings.Cut(kv, "="); ok {
			runtimes = append(runtimes, newRuntime(name, path))
		}
	}
	return 0
}

func teardown() {
	if workDir != "" {
		_ = os.RemoveAll(workDir)
	}
	removeCgroupBase()
}

// berthRunner returns the runtime under test: BERTH_RUNTIME, a binary in
// BERTH_TEST_BINDIR (the Makefile's), or one built now with the release tags.
func berthRunner() (string, error) {
	if p := os.Getenv("BERTH_RUNTIME"); p != "" {
		return filepath.Abs(p)
	}
	if dir := os.Getenv("BERTH_TEST_BINDIR"); dir != "" {
		p := filepath.Join(dir, "berth-runner")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	out := filepath.Join(workDir, "bin", "berth-runner")
	cmd := exec.Command("go", "build", "-tags", buildTags, "-ldflags", "-extldflags -static", "-o", out,
		"github.com/berth-cri/berth/cmd/berth-runner")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%v: %s", err, b)
	}
	return out, os.Chmod(filepath.Dir(out), 0o755)
}

func isStatic(path string) bool {
	b, err := exec.Command("file", "-L", path).Output()
	if err != nil {
		// no file(1): trust the name
		_, err := os.Stat(path)
		return err == nil
	}
	return strings.Contains(string(b), "statically linked") || strings.Contains(string(b), "static-pie")
}

// forEachRuntime runs f as one subtest per runtime.
func forEachRuntime(t *testing.T, f func(t *testing.T, rt *ociRuntime)) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	for _, rt := range runtimes {
		t.Run(rt.name, func(t *testing.T) { f(t, rt) })
	}
}
