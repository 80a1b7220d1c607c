package main

import (
	"bufio"
	"context"
	_ "embed"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// laneScript is the lane's inside (lane.sh), put on the share.
//
//go:embed lane.sh
var laneScript string

// buildTags are the Makefile's TAGS: the e2e binary is built with them.
const buildTags = "containers_image_openpgp exclude_graphdriver_btrfs exclude_graphdriver_devicemapper seccomp netgo osusergo"

// defaultE2E is the e2e part run in the VM, chosen for what only a
// systemd, cgroup v2 node shows: limits and their updates, stats (cpu,
// memory, io, PSI), OOM and exit reasons, the pod cgroup parent, user
// namespaces, and containers surviving a daemon kill.
const defaultE2E = `^(TestVersionStatusRuntimeConfig|TestContainerLifecycle|TestContainerExitReasons|` +
	`TestContainerStopSignalAndGrace|TestContainerUpdateResources|TestContainerSecurity|` +
	`TestContainersSurviveDaemonKill|TestSharedPIDNamespace|TestStatsCPU|TestStatsMemoryAndWritableLayer|` +
	`TestStatsNetworkAndMetrics|TestUpdatePodSandboxResources|TestPodCgroupParent|` +
	`TestUserNamespacePod|TestUserNamespacePodSurvivesDaemonKill|TestUserNamespaceRejections|TestUserNamespaceCgroupDelegation|` +
	`TestSystemdCgroupDriver|TestSystemdKubeletSlice|TestSystemdOOMAndPodResources|TestCgroupDriverFollowsNode)$`

// ciE2E is vm-test-ci's smaller e2e part: the systemd driver's own tests
// (OOM kills in a scope systemd removes at once among them) and one test
// each of limits and their update, stats, pod resources, user namespaces
// and their cgroup delegation.
const ciE2E = `^(TestSystemdCgroupDriver|TestSystemdKubeletSlice|TestSystemdOOMAndPodResources|TestCgroupDriverFollowsNode|` +
	`TestContainerUpdateResources|TestStatsCPU|TestUpdatePodSandboxResources|TestUserNamespacePod|TestUserNamespaceCgroupDelegation)$`

type laneOptions struct {
	machine        machineFlags
	bindir, work   string
	critest, e2e   string // matrices
	handlers       string
	e2eRun         string
	e2eTimeout     time.Duration
	timeout        time.Duration
	critestArgs    string
	critestVersion string
}

func laneMain(args []string) int {
	fs := flag.NewFlagSet("lane", flag.ExitOnError)
	var o laneOptions
	o.machine.register(fs)
	fs.StringVar(&o.bindir, "bindir", "bin", "berthd and its helpers, static (make build)")
	fs.StringVar(&o.work, "work", "build/vm", "the lane's work directory on the host (the share is <work>/share)")
	fs.StringVar(&o.critest, "critest", "systemd/berth systemd/runc systemd/crun cgroupfs/berth",
		"critest runs: driver/runtime pairs, space-separated (empty: no critest)")
	fs.StringVar(&o.critestArgs, "critest-args", "", "more flags for the critest harness in the VM (e.g. -focus REGEXP)")
	fs.StringVar(&o.critestVersion, "critest-version", "v1.37.0", "cri-tools release (the harness's -version)")
	fs.StringVar(&o.e2e, "e2e", "systemd cgroupfs", "e2e runs: cgroup drivers, space-separated (empty: no e2e)")
	fs.StringVar(&o.handlers, "handlers", "berth,runc,crun", "runtime handlers the e2e container tests run with")
	fs.StringVar(&o.e2eRun, "e2e-run", defaultE2E, "the e2e tests to run (-test.run); \"ci\" is vm-test-ci's smaller set")
	fs.DurationVar(&o.e2eTimeout, "e2e-timeout", 60*time.Minute, "-test.timeout of each e2e run")
	fs.DurationVar(&o.timeout, "timeout", 3*time.Hour, "hard limit for the whole VM run")
	fs.Parse(args)

	if o.e2eRun == "ci" {
		o.e2eRun = ciE2E
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	t0 := time.Now()
	sum, err := lane(ctx, o)
	fmt.Printf("vm-test: %d passed, %d failed, %d skipped (%s in all)\n", sum.passed, sum.failed, sum.skipped,
		time.Since(t0).Round(time.Second))
	if err != nil {
		fmt.Fprintf(os.Stderr, "vm-test: %v\n", err)
		return 1
	}
	return 0
}

// counts are one run's, or the sum's.
type counts struct {
	passed, failed, skipped int
}

func lane(ctx context.Context, o laneOptions) (counts, error) {
	var sum counts
	t0 := time.Now()
	img, err := ensureImage(o.machine.src, o.machine.cache, os.Stderr)
	if err != nil {
		return sum, err
	}
	if img.built {
		fmt.Printf("vm-test: image built in %s\n", img.buildTime.Round(time.Second))
	}
	t0 = time.Now()
	share, err := prepareShare(ctx, o)
	if err != nil {
		return sum, err
	}
	fmt.Printf("vm-test: binaries for the VM built in %s\n", time.Since(t0).Round(time.Second))

	env := []string{
		"LANE_CRITEST=" + o.critest,
		"LANE_CRITEST_ARGS=" + o.critestArgs,
		"LANE_E2E=" + o.e2e,
		"LANE_E2E_HANDLERS=" + o.handlers,
		"LANE_E2E_RUN=" + o.e2eRun,
		"LANE_E2E_TIMEOUT=" + o.e2eTimeout.String(),
	}
	pr, pw := io.Pipe()
	results := make(chan []laneResult, 1)
	go func() { results <- readResults(pr, os.Stdout) }()
	vo := vmOptions{img: img, share: share, env: env, cmd: []string{"bash", "lane.sh"}, timeout: o.timeout,
		smp: o.machine.smp, memMiB: o.machine.mem, accel: o.machine.accel, verbose: o.machine.verbose, console: o.machine.console, stdout: pw}
	res, vmErr := runVM(ctx, vo)
	pw.Close()
	rs := <-results
	fmt.Printf("vm-test: %s, booted to the lane in %s, VM ran %s\n", res.accel,
		res.booted.Round(100*time.Millisecond), res.total.Round(time.Second))
	if res.consoleT != "" {
		fmt.Printf("vm-test: the console's last lines:\n%s\n", res.consoleT)
	}

	var failed []string
	for _, r := range rs {
		fmt.Printf("vm-test: %-40s rc=%d  %d passed, %d failed, %d skipped\n", r.name, r.rc, r.passed, r.failed, r.skipped)
		sum.passed += r.passed
		sum.failed += r.failed
		sum.skipped += r.skipped
		if r.rc != 0 {
			failed = append(failed, r.name)
		}
	}
	switch {
	case vmErr != nil:
		return sum, vmErr
	case res.code != 0:
		return sum, fmt.Errorf("the lane's script exited %d", res.code)
	case len(rs) == 0:
		return sum, fmt.Errorf("the lane ran nothing")
	case len(failed) > 0:
		return sum, fmt.Errorf("failed: %s", strings.Join(failed, "; "))
	}
	return sum, nil
}

// laneResult is one lane-result line of lane.sh.
type laneResult struct {
	name string
	rc   int
	counts
}

var resultLine = regexp.MustCompile(`^lane-result (.+) rc=(\d+): (\d+) passed, (\d+) failed, (\d+) skipped$`)

// readResults copies the lane's output to w and collects its result lines.
func readResults(r io.Reader, w io.Writer) []laneResult {
	var out []laneResult
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		line := s.Text()
		fmt.Fprintln(w, line)
		m := resultLine.FindStringSubmatch(strings.TrimRight(line, "\r"))
		if m == nil {
			continue
		}
		n := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
		out = append(out, laneResult{name: m[1], rc: n(2), counts: counts{n(3), n(4), n(5)}})
	}
	io.Copy(io.Discard, r)
	return out
}

// prepareShare builds what the VM runs and lays it out in <work>/share:
// lane.sh, bin/ (berthd and its helpers), e2e.test, and critest/ (the
// harness, its scripts and expected list in src/, its tools).
func prepareShare(ctx context.Context, o laneOptions) (string, error) {
	share, err := filepath.Abs(filepath.Join(o.work, "share"))
	if err != nil {
		return "", err
	}
	os.RemoveAll(share)
	for _, d := range []string{"bin", "critest/src"} {
		if err := os.MkdirAll(filepath.Join(share, d), 0o755); err != nil {
			return "", err
		}
	}
	if err := os.WriteFile(filepath.Join(share, "lane.sh"), []byte(laneScript), 0o755); err != nil {
		return "", err
	}
	bins, err := os.ReadDir(o.bindir)
	if err != nil {
		return "", fmt.Errorf("-bindir: %w (make build first)", err)
	}
	for _, b := range bins {
		if b.Type().IsRegular() {
			if err := copyInto(filepath.Join(o.bindir, b.Name()), filepath.Join(share, "bin", b.Name()), 0o755); err != nil {
				return "", err
			}
		}
	}
	static := []string{"-trimpath", "-tags", buildTags, "-ldflags", "-s -w -extldflags -static"}
	steps := [][]string{
		append(append([]string{"test", "-c"}, static...), "-o", filepath.Join(share, "e2e.test"), "./test/e2e"),
		append(append([]string{"build"}, static...), "-o", filepath.Join(share, "critest", "critest-harness"), "./test/critest"),
	}
	for _, s := range steps {
		if err := runHost(ctx, nil, "go", s...); err != nil {
			return "", err
		}
	}
	// The tools: critest, busybox and the stand-ins, built (or taken from
	// the cache) on the host by the harness itself.
	if err := runHost(ctx, nil, filepath.Join(share, "critest", "critest-harness"),
		"-bindir", o.bindir, "-cache", o.machine.cache, "-build", filepath.Join(o.work, "critest-tools"),
		"-version", o.critestVersion, "-save-tools", filepath.Join(share, "critest", "tools")); err != nil {
		return "", err
	}
	srcs, err := filepath.Glob("test/critest/*")
	if err != nil {
		return "", err
	}
	for _, f := range srcs {
		if st, err := os.Stat(f); err == nil && st.Mode().IsRegular() && !strings.HasSuffix(f, ".go") {
			if err := copyInto(f, filepath.Join(share, "critest", "src", filepath.Base(f)), st.Mode().Perm()); err != nil {
				return "", err
			}
		}
	}
	lists, err := filepath.Glob(filepath.Join(o.machine.src, "expected-*.txt"))
	if err != nil {
		return "", err
	}
	for _, f := range lists {
		if err := copyInto(f, filepath.Join(share, "critest", filepath.Base(f)), 0o644); err != nil {
			return "", err
		}
	}
	return share, nil
}

func runHost(ctx context.Context, env []string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return nil
}

// copyInto hard-links src to dst, or copies it across filesystems.
func copyInto(src, dst string, perm os.FileMode) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, perm)
}
