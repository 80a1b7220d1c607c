// Command node-e2e runs Kubernetes' node conformance suite (the
// [NodeConformance] specs of k8s.io/kubernetes/test/e2e_node) against a
// berthd of this tree, offline: it builds the suite, its kubelet, ginkgo
// and agnhost at a pinned release (build.sh, cached), builds every image
// the specs pull with test/testimage and serves them from a registry on
// 127.0.0.1, starts berthd on private roots (test/launch) with a
// registries.conf that rewrites every upstream registry to that one, runs
// the suite through ginkgo in parallel (the suite starts etcd, the
// apiserver and the kubelet itself), compares the failures with
// test/node-e2e/expected-failures.txt, and checks that nothing is left on
// the host. `make node-e2e` and `make node-e2e-ci` run it.
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

	"github.com/berth-cri/berth/test/testimage"
	"github.com/berth-cri/berth/test/verdict"
)

// The suite's selection, as upstream's node conformance jobs run it
// (CRI-O's CI skips Flaky, Slow and Serial too): what needs no feature
// gate, no alpha API, no exclusive node and no disruption; and the
// checkpoint spec, [Feature:CheckpointContainer] (the kubelet's
// checkpoint API, a beta gate on by default, through the apiserver's node
// proxy), which only needs CRIU (-criu). Ginkgo's regexps cannot say
// "every feature but one", so features are left out by the label
// filter instead of the skip: the suite labels each [Feature:X] spec
// Feature:X, and the filter keeps specs with no feature or with
// CheckpointContainer alone. (With the skip's former
// `\[Feature:[^]]+\]` the selection is the same specs minus the
// checkpoint spec; compare with e2e_node.test --ginkgo.dry-run.)
const (
	defaultFocus  = `\[NodeConformance\]|\[Feature:CheckpointContainer\]`
	defaultSkip   = `\[Flaky\]|\[Slow\]|\[Serial\]|\[Disruptive\]|\[Alpha\]`
	defaultLabels = `Feature: isEmpty || Feature: isSubsetOf {CheckpointContainer}`
)

type options struct {
	bindir, build, cache, src string
	focus, skip, labels       string
	expected, criu            string
	nodes                     int
	debug                     bool
	timeout                   time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.bindir, "bindir", "bin", "berthd and its helpers (make build)")
	flag.StringVar(&o.build, "build", "build/node-e2e", "reports, logs, the suite's working directory")
	flag.StringVar(&o.cache, "cache", "build/cache/node-e2e", "cache of the Kubernetes and busybox builds, kept between runs")
	flag.StringVar(&o.src, "src", "test/node-e2e", "this harness's directory (scripts, wrapper module, expected list)")
	flag.StringVar(&o.focus, "focus", "", "ginkgo focus (default: "+defaultFocus+")")
	flag.StringVar(&o.skip, "skip", "", "ginkgo skip (default: "+defaultSkip+")")
	flag.StringVar(&o.labels, "labels", "", "ginkgo label filter (default: "+defaultLabels+")")
	flag.StringVar(&o.criu, "criu", "", "CRIU binary for berthd's checkpoints (runtime.criu_path; empty: criu from berthd's PATH)")
	flag.StringVar(&o.expected, "expected", "", "expected failures (default <src>/expected-failures.txt)")
	flag.IntVar(&o.nodes, "nodes", 8, "ginkgo parallel processes (most specs wait, few compute)")
	flag.DurationVar(&o.timeout, "timeout", 3*time.Hour, "the suite's own timeout")
	flag.BoolVar(&o.debug, "debug", false, "berthd logs at debug level")
	rejudge := flag.Bool("rejudge", false, "only read the last run's report again against the expected list")
	flag.Parse()
	full := o.focus == "" && o.skip == "" && o.labels == ""
	if o.focus == "" {
		o.focus = defaultFocus
	}
	if o.skip == "" {
		o.skip = defaultSkip
	}
	if o.labels == "" {
		o.labels = defaultLabels
	}
	if o.expected == "" {
		o.expected = filepath.Join(o.src, "expected-failures.txt")
	}
	if *rejudge {
		if err := judge(o, filepath.Join(o.build, "junit.xml"), full); err != nil {
			fmt.Fprintf(os.Stderr, "node-e2e: %v\n", err)
			os.Exit(1)
		}
		return
	}
	start := time.Now()
	err := run(o, full)
	fmt.Printf("node-e2e harness took %s\n", time.Since(start).Round(time.Second))
	if err != nil {
		fmt.Fprintf(os.Stderr, "node-e2e: %v\n", err)
		os.Exit(1)
	}
}

func run(o options, full bool) (err error) {
	for _, p := range []*string{&o.bindir, &o.build, &o.cache, &o.src, &o.expected, &o.criu} {
		if *p == "" {
			continue
		}
		if *p, err = filepath.Abs(*p); err != nil {
			return err
		}
	}
	if o.criu != "" {
		if _, err := os.Stat(o.criu); err != nil {
			return fmt.Errorf("-criu: %w", err)
		}
	}
	if err := os.MkdirAll(o.build, 0o755); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	t0 := time.Now()
	tl, err := buildTools(ctx, o)
	if err != nil {
		return err
	}
	fmt.Printf("tools ready in %s (%s)\n", time.Since(t0).Round(time.Second), tl.k8s)

	reg := testimage.NewRegistry(testimage.RegistryOptions{})
	defer reg.Stop()
	t0 = time.Now()
	n, err := pushAll(reg, tl)
	if err != nil {
		return err
	}
	fmt.Printf("pushed %d image names to %s in %s\n", n, reg.Host, time.Since(t0).Round(time.Millisecond))

	host, err := claimHost()
	if err != nil {
		return err
	}
	d, err := newDaemon(o, reg)
	if err != nil {
		if d != nil {
			d.Teardown()
		}
		host.release(nil)
		return err
	}
	// Whatever happens from here, the suite's processes are gone, berthd
	// is stopped and the host cleaned; leftovers fail the run.
	defer func() {
		err = errors.Join(err, teardown(d, host, tl))
	}()
	if err := d.Start(); err != nil {
		return err
	}
	fmt.Printf("berthd serving on %s (config %s)\n", d.Socket, d.Config)
	return runSuite(ctx, o, tl, d.Socket, full)
}

func runSuite(ctx context.Context, o options, tl tools, socket string, full bool) error {
	work := filepath.Join(o.build, "work")
	report := filepath.Join(o.build, "junit.xml")
	os.RemoveAll(work)
	os.Remove(report)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	kubeletConfig := filepath.Join(work, "kubelet-base.yaml")
	if err := os.WriteFile(kubeletConfig, []byte(kubeletConfigYAML()), 0o644); err != nil {
		return err
	}
	path, err := pathWithout(filepath.Join(o.build, "path"), os.Getenv("PATH"), hiddenCommands)
	if err != nil {
		return err
	}
	args := []string{
		"--nodes", fmt.Sprint(o.nodes), "--focus", o.focus, "--skip", o.skip, "--label-filter", o.labels,
		"--timeout", o.timeout.String(), "--no-color", "--output-dir", o.build, "--junit-report", "junit.xml",
		filepath.Join(tl.k8s, "e2e_node.test"), "--",
		"--k8s-bin-dir", tl.k8s,
		"--container-runtime-endpoint", "unix://" + socket,
		"--prepull-images=false",
		// The harness stops the kubelet and the services once the
		// kubelet has removed the last pods (teardown).
		"--stop-services=false",
		"--report-dir", filepath.Join(o.build, "report"),
		"--kubelet-config-file", kubeletConfig,
		"--kubelet-flags", kubeletFlags,
	}
	cmd := exec.Command(filepath.Join(tl.k8s, "ginkgo"), args...)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "PATH="+path)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	// Its own process group, so the suite's children (the services
	// process, the kubelet) can be found and stopped as one on ^C.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	fmt.Printf("running %s\n", strings.Join(cmd.Args, " "))
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var runErr error
	select {
	case runErr = <-done:
	case <-ctx.Done():
		// ginkgo stops its processes and still writes its report.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		runErr = <-done
	}
	fmt.Printf("the suite ran for %s (exit: %v)\n", time.Since(t0).Round(time.Second), runErr)
	if err := judge(o, report, full); err != nil {
		if _, statErr := os.Stat(report); statErr != nil {
			return fmt.Errorf("the suite wrote no report (ginkgo: %v): %w", runErr, err)
		}
		return err
	}
	if runErr != nil && ctx.Err() != nil {
		return fmt.Errorf("interrupted")
	}
	return nil
}

// reasons an expected-failures line may give: facts about the host the
// suite runs on, never about Berth. The kernel lacks a feature or a
// module; the host lacks something a node has (systemd as PID 1, a
// capability); the image cannot exist offline; the kubelet cannot do it
// for a runtime it has no built-in support for.
var reasons = []string{"kernel:", "host:", "offline:", "kubelet:"}

// judge reads the suite's report, writes the failures file and compares
// the results with the expected list.
func judge(o options, report string, full bool) error {
	lane := verdict.Lane{Expected: o.expected, Reasons: reasons,
		FailuresFiles: []string{filepath.Join(o.build, "failures.txt")}}
	return lane.JudgeReport(report, full)
}
