// Command critest runs cri-tools' conformance suite (critest) against a
// berthd of this tree, offline: it builds critest and crictl at a pinned
// release, builds every image critest pulls with test/testimage and
// serves them from a registry on 127.0.0.1, starts berthd on private
// roots with a registries.conf that rewrites every upstream registry to
// that one, runs the suite serially, compares the failures with
// test/critest/expected-failures.txt, and checks that nothing is left on
// the host. With -bench it runs critest's benchmarks instead and prints
// p50/p90/p99 per operation. `make critest` and `make critest-bench` run it.
//
// The registry is test/testimage's, in this process: the same one the
// e2e tests pull from, in memory, on a free port, gone when the harness
// exits, with nothing to install or configure (Debian's docker-registry
// would need a config file, a storage directory and a service to stop).
// Images are rebuilt and pushed on every run; their layers are
// reproducible, so that takes seconds.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/berth-cri/berth/test/launch"
	"github.com/berth-cri/berth/test/testimage"
	"github.com/berth-cri/berth/test/verdict"
)

type options struct {
	bindir, build, cache, version, src string
	focus, skip, expected              string
	runtime, cgroupDriver              string
	bench, debug                       bool
	benchN                             int
	failuresOut                        string
	tools, saveTools                   string
}

func main() {
	var o options
	flag.StringVar(&o.bindir, "bindir", "bin", "berthd and its helpers (make build)")
	flag.StringVar(&o.build, "build", "build/critest", "reports, logs and stand-in binaries")
	flag.StringVar(&o.cache, "cache", "build/cache", "cache of critest/crictl and busybox builds, kept between runs")
	flag.StringVar(&o.version, "version", "v1.37.0", "sigs.k8s.io/cri-tools release")
	flag.StringVar(&o.src, "src", "test/critest", "this harness's directory (scripts, stand-ins, expected list)")
	flag.StringVar(&o.focus, "focus", "", "run only specs matching this regexp (ginkgo focus)")
	flag.StringVar(&o.skip, "skip", "", "skip specs matching this regexp")
	flag.StringVar(&o.expected, "expected", "", "expected failures (default <src>/expected-failures.txt)")
	flag.StringVar(&o.failuresOut, "failures-out", "", "also write the failed and skipped specs with reasons here")
	flag.BoolVar(&o.bench, "bench", false, "run critest -benchmark and print p50/p90/p99 per operation")
	flag.IntVar(&o.benchN, "bench-n", 30, "samples per benchmark")
	flag.BoolVar(&o.debug, "debug", false, "berthd logs at debug level")
	flag.StringVar(&o.tools, "tools", "", "take critest, busybox and the stand-ins from this directory (as -save-tools wrote it) "+
		"instead of building them: for a machine without Go or apt, like test/vm's")
	flag.StringVar(&o.saveTools, "save-tools", "", "build critest, busybox and the stand-ins, copy them into this directory and exit")
	flag.StringVar(&o.runtime, "runtime", "berth", "berthd's default runtime handler: berth (berth-runner), runc or crun")
	flag.StringVar(&o.cgroupDriver, "cgroup-driver", "", "berthd's cgroup driver: cgroupfs or systemd (default: berthd's own)")
	rejudge := flag.Bool("rejudge", false, "only read the last run's report again against the expected list")
	flag.Parse()
	if o.expected == "" {
		o.expected = filepath.Join(o.src, "expected-failures.txt")
	}
	if *rejudge {
		if err := judge(o, filepath.Join(o.build, "junit.xml")); err != nil {
			fmt.Fprintf(os.Stderr, "critest: %v\n", err)
			os.Exit(1)
		}
		return
	}
	start := time.Now()
	err := run(o)
	fmt.Printf("critest harness took %s\n", time.Since(start).Round(time.Second))
	if err != nil {
		fmt.Fprintf(os.Stderr, "critest: %v\n", err)
		os.Exit(1)
	}
}

func run(o options) (err error) {
	for _, p := range []*string{&o.bindir, &o.build, &o.cache, &o.src, &o.expected, &o.tools, &o.saveTools} {
		if *p == "" {
			continue
		}
		if *p, err = filepath.Abs(*p); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(o.build, 0o755); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	t0 := time.Now()
	tl, critest, err := buildTools(ctx, o)
	if err != nil {
		return err
	}
	fmt.Printf("tools ready in %s\n", time.Since(t0).Round(time.Second))
	if o.saveTools != "" {
		return saveTools(o.saveTools, tl, critest)
	}

	reg := testimage.NewRegistry(testimage.RegistryOptions{})
	defer reg.Stop()
	t0 = time.Now()
	n, err := pushAll(reg, tl)
	if err != nil {
		return err
	}
	fmt.Printf("pushed %d image names to %s in %s\n", n, reg.Host, time.Since(t0).Round(time.Millisecond))

	d, err := newDaemon(o, reg)
	// Whatever happens from here, berthd is stopped and the host cleaned.
	defer func() {
		if d == nil {
			return
		}
		if terr := d.Teardown(); terr != nil {
			err = errors.Join(err, fmt.Errorf("after critest: %w", terr))
		}
	}()
	if err != nil {
		return err
	}
	if err := d.Start(); err != nil {
		return err
	}
	fmt.Printf("berthd serving on %s (runtime %s, config %s, log %s)\n", d.Socket, o.runtime, d.Config, filepath.Join(o.build, "berthd.log"))

	if o.bench {
		return runBench(ctx, o, critest, d)
	}
	return runSuite(ctx, o, critest, d)
}

// buildTools builds (or finds in the cache) critest and crictl, busybox,
// and the stand-in programs of the images.
func buildTools(ctx context.Context, o options) (tools, string, error) {
	var t tools
	if o.tools != "" {
		return prebuiltTools(o)
	}
	if err := runLogged(ctx, "bash", filepath.Join(o.src, "build-critest.sh"), o.version, o.cache); err != nil {
		return t, "", fmt.Errorf("build critest: %w", err)
	}
	critest := filepath.Join(o.cache, "cri-tools-"+o.version, "critest")
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(o.src, "build-busybox.sh"), o.cache)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return t, "", fmt.Errorf("build busybox: %w", err)
	}
	lines := strings.Fields(string(out))
	if len(lines) == 0 {
		return t, "", fmt.Errorf("build busybox: no path printed")
	}
	t.busybox = lines[len(lines)-1]
	for _, s := range []struct {
		name string
		dst  *string
	}{{"nginx", &t.nginx}, {"nnp", &t.nnp}} {
		*s.dst = filepath.Join(o.build, "standins", s.name)
		b := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", *s.dst, "./"+s.name)
		b.Dir = filepath.Join(o.src, "standins")
		b.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := b.CombinedOutput(); err != nil {
			return t, "", fmt.Errorf("build stand-in %s: %w\n%s", s.name, err, out)
		}
	}
	t.pause = filepath.Join(o.bindir, "berth-pause")
	return t, critest, nil
}

// toolNames are the files -save-tools writes and -tools reads.
var toolNames = []string{"critest", "busybox", "nginx", "nnp"}

func saveTools(dir string, t tools, critest string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i, src := range []string{critest, t.busybox, t.nginx, t.nnp} {
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, toolNames[i]), b, 0o755); err != nil {
			return err
		}
	}
	fmt.Printf("tools saved in %s\n", dir)
	return nil
}

func prebuiltTools(o options) (tools, string, error) {
	for _, n := range toolNames {
		if _, err := os.Stat(filepath.Join(o.tools, n)); err != nil {
			return tools{}, "", fmt.Errorf("-tools: %w (write the directory with -save-tools)", err)
		}
	}
	t := tools{
		busybox: filepath.Join(o.tools, "busybox"),
		nginx:   filepath.Join(o.tools, "nginx"),
		nnp:     filepath.Join(o.tools, "nnp"),
		pause:   filepath.Join(o.bindir, "berth-pause"),
	}
	return t, filepath.Join(o.tools, "critest"), nil
}

func runLogged(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}

// critestCmd runs critest against d. On ^C the harness asks critest to
// stop (SIGINT: ginkgo still writes its report) before tearing down.
func critestCmd(ctx context.Context, critest string, d *launch.Daemon, args ...string) *exec.Cmd {
	all := append([]string{
		"-runtime-endpoint", "unix://" + d.Socket, "-image-endpoint", "unix://" + d.Socket,
		"-config", d.CrictlConfig(), "-nri-socket", nriSocket(d),
		"-ginkgo.no-color", "-ginkgo.timeout", "2h",
	}, args...)
	cmd := exec.Command(critest, all...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	go func() {
		<-ctx.Done()
		if cmd.Process != nil {
			cmd.Process.Signal(syscall.SIGINT)
		}
	}()
	return cmd
}

func runSuite(ctx context.Context, o options, critest string, d *launch.Daemon) error {
	report := filepath.Join(o.build, "junit.xml")
	os.Remove(report)
	args := []string{"-ginkgo.junit-report", report, "-ginkgo.v"}
	if o.focus != "" {
		args = append(args, "-ginkgo.focus", o.focus)
	}
	if o.skip != "" {
		args = append(args, "-ginkgo.skip", o.skip)
	}
	cmd := critestCmd(ctx, critest, d, args...)
	fmt.Printf("running %s\n", strings.Join(cmd.Args, " "))
	t0 := time.Now()
	runErr := cmd.Run()
	fmt.Printf("critest ran for %s (exit: %v)\n", time.Since(t0).Round(time.Second), runErr)

	if err := judge(o, report); err != nil {
		if _, statErr := os.Stat(report); statErr != nil {
			return fmt.Errorf("critest wrote no report (critest: %v): %w", runErr, err)
		}
		return err
	}
	if runErr != nil && ctx.Err() != nil {
		return fmt.Errorf("interrupted")
	}
	return nil
}

// reasons an expected-failures line may give (issue 9): the kernel lacks
// the feature, the image cannot exist offline, another open issue builds
// the RPC, or (in a runtime's own list, test/vm's) the runtime binary
// lacks it.
var reasons = []string{"kernel:", "offline:", "issue:", "runtime:"}

// judge reads critest's report, writes the failures files and compares
// the results with the expected list.
func judge(o options, report string) error {
	lane := verdict.Lane{Expected: o.expected, Reasons: reasons,
		FailuresFiles: []string{filepath.Join(o.build, "failures.txt"), o.failuresOut}}
	return lane.JudgeReport(report, o.focus == "" && o.skip == "")
}

func runBench(ctx context.Context, o options, critest string, d *launch.Daemon) error {
	out := filepath.Join(o.build, "bench")
	os.RemoveAll(out)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	params := filepath.Join(o.build, "bench-params.yaml")
	yaml := fmt.Sprintf("containersNumber: %d\ncontainersNumberParallel: 1\npodsNumber: %d\npodsNumberParallel: 1\n"+
		"imagesNumber: %d\nimagesNumberParallel: 1\n", o.benchN, o.benchN, o.benchN)
	if err := os.WriteFile(params, []byte(yaml), 0o644); err != nil {
		return err
	}
	cmd := critestCmd(ctx, critest, d, "-benchmark", "-benchmarking-params-file", params,
		"-benchmarking-output-dir", out, "-ginkgo.junit-report", filepath.Join(o.build, "bench-junit.xml"))
	fmt.Printf("running %s\n", strings.Join(cmd.Args, " "))
	runErr := cmd.Run()
	if err := printBench(os.Stdout, out); err != nil {
		return errors.Join(err, runErr)
	}
	if runErr != nil {
		return fmt.Errorf("critest -benchmark: %w", runErr)
	}
	return nil
}
