// Command bench runs `berthctl bench` against a berthd it starts and, in
// the same run, against Debian's containerd and (given a crio binary)
// CRI-O, all on private roots, the same CNI bridge and the same local
// registry, and prints each phase's p50/p90/p99 side by side with the
// ratios Berth/peer; then the daemons' RSS idle and with running pods,
// and the per-pod helper processes' RSS and PSS (berth-monitor and
// berth-pause; the shim and pause; conmon and pause). It is a benchmark: it fails when a runtime does not run or
// berthd leaves something behind (test/launch checks, after the report),
// never on a number. `make bench` runs it; `make bench-steady` runs only
// the steady-state scenario (-steady: many pods probed for minutes, the
// server's and helpers' CPU and memory; steady.go).
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/berth-cri/berth/test/testimage"
)

type options struct {
	bindir     string
	containerd string
	pods       int
	parallel   int
	running    int
	execs      bool
	pid        string
	soak       int
	lifecycles bool
	probes     int
	traced     int
	stops      int
	crio       string
	pinns      string // beside crio or on PATH
	steady     bool
	steadyOpts steadyOptions
}

func main() {
	var o options
	flag.StringVar(&o.bindir, "bindir", "bin", "directory of berthd, berthctl, berth-monitor, berth-runner, berth-pause")
	flag.StringVar(&o.containerd, "containerd", "/usr/bin/containerd", "containerd binary (1.6); empty: Berth only")
	flag.IntVar(&o.pods, "pods", 20, "pod lifecycles timed per runtime")
	flag.IntVar(&o.parallel, "parallel", 2, "lifecycles in flight")
	flag.IntVar(&o.running, "running", 10, "pods left running while memory is measured")
	flag.StringVar(&o.pid, "pid", "container", "pods' PID namespace: container (kubelet's default) or pod (shared, with an infra process)")
	flag.IntVar(&o.soak, "soak", 0, "then run this many more lifecycles (8 in flight) and show the daemon's RSS before and after")
	flag.BoolVar(&o.execs, "execs", true, "count the execs of one pod's lifecycle (strace -f on the daemon)")
	flag.BoolVar(&o.lifecycles, "lifecycles", true, "time the pod lifecycles and measure memory (false: the probe and stop scenarios only)")
	flag.IntVar(&o.probes, "probes", 200, "ExecSync `true` probes timed against one running container (0: none)")
	flag.IntVar(&o.traced, "probes-traced", 10, "more probes watched by strace -f to count the processes they spawn")
	flag.IntVar(&o.stops, "stops", 20, "one-container pods stopped and removed one at a time, timed (0: none)")
	flag.StringVar(&o.crio, "crio", os.Getenv("CRIO"), "crio binary for a CRI-O column (default $CRIO)")
	flag.BoolVar(&o.steady, "steady", false, "run the steady-state scenario: -steady-pods pods probed every -steady-period for -steady-for")
	flag.IntVar(&o.steadyOpts.pods, "steady-pods", 110, "steady state: one-container pods running (kubelet's default max pods)")
	flag.DurationVar(&o.steadyOpts.period, "steady-period", 10*time.Second, "steady state: each pod's exec probe period (kubelet's default)")
	flag.DurationVar(&o.steadyOpts.window, "steady-for", 10*time.Minute, "steady state: how long CPU and memory are measured")
	flag.DurationVar(&o.steadyOpts.timeout, "steady-timeout", time.Second, "steady state: each probe's timeout (kubelet's default timeoutSeconds)")
	short := flag.Bool("steady-short", false, "steady state, a quick check: 10 pods, a 2 s period, 30 s (flags given explicitly win)")
	flag.Parse()
	if *short {
		o.steady = true
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["steady-pods"] {
			o.steadyOpts.pods = 10
		}
		if !set["steady-period"] {
			o.steadyOpts.period = 2 * time.Second
		}
		if !set["steady-for"] {
			o.steadyOpts.window = 30 * time.Second
		}
	}
	if o.steady && (o.steadyOpts.pods < 1 || o.steadyOpts.period <= 0 || o.steadyOpts.window <= 0) {
		log.Fatal("-steady needs -steady-pods >= 1 and a positive -steady-period and -steady-for")
	}
	bindir, err := filepath.Abs(o.bindir)
	if err != nil {
		log.Fatal(err)
	}
	o.bindir = bindir
	if o.containerd != "" {
		if _, err := os.Stat(o.containerd); err != nil {
			log.Printf("no containerd (%v): Berth only; apt-get install containerd for the comparison", err)
			o.containerd = ""
		}
	}
	if o.crio != "" {
		var err error
		if o.pinns, err = crioMissing(o.crio, o.pid); err != nil {
			log.Printf("CRI-O column skipped: %v", err)
			o.crio = ""
		}
	} else {
		log.Printf("CRI-O column skipped: no crio binary given (-crio or $CRIO; make crio builds one)")
	}
	if err := run(o); err != nil {
		log.Fatal(err)
	}
}

// result is what one runtime measured.
type result struct {
	name       string
	bench      benchSummary
	benchWall  time.Duration
	fresh      mem // daemon, just started, nothing pulled
	idle       mem // daemon, images pulled, no pods
	afterBench mem // daemon, after the lifecycles
	loaded     mem // daemon, with o.running pods
	helpers    []roleMem
	execs      map[string]int
	steps      []stepTime // berthd's own breakdown of the lifecycles
	soakBefore mem        // daemon before the soak lifecycles
	soakAfter  mem        // and after them
	soakErrors int
	stopErr    error // what the daemon left behind
	probes     *probeResult
	stops      *stopResult
	steady     *steadyResult
}

func run(o options) error {
	began := time.Now()
	reg := testimage.NewRegistry(testimage.RegistryOptions{})
	defer reg.Stop()
	busyboxRef, pauseRef, err := pushImages(reg, o.bindir)
	if err != nil {
		return err
	}

	var results []result
	// What a daemon left behind fails the run, after the report.
	var left []error
	registries := testimage.RegistriesConf(testimage.ConfOptions{Insecure: []string{reg.Host}})
	berth, err := newBerth(o.bindir, registries)
	if err != nil {
		return err
	}
	res, err := measure(o, berth, busyboxRef)
	if err != nil {
		return errors.Join(err, res.stopErr)
	}
	results, left = append(results, res), append(left, res.stopErr)
	if o.containerd != "" {
		ctrd, err := newContainerd(o.containerd, reg.Host, pauseRef)
		if err != nil {
			return err
		}
		res, err := measure(o, ctrd, busyboxRef, pauseRef)
		if err != nil {
			return errors.Join(err, res.stopErr)
		}
		results, left = append(results, res), append(left, res.stopErr)
	}
	if o.crio != "" {
		crio, err := newCRIO(o.crio, o.pinns, registries, pauseRef)
		if err != nil {
			if crio != nil {
				err = errors.Join(err, crio.stop())
			}
			return err
		}
		res, err := measure(o, crio, busyboxRef, pauseRef)
		if err != nil {
			return errors.Join(err, res.stopErr)
		}
		results, left = append(results, res), append(left, res.stopErr)
	}
	if o.lifecycles {
		fmt.Printf("\n%d pod lifecycles, %d in flight, per runtime (busybox `sleep 3600` + one ExecSync per pod); %d pods running for memory.\n\n",
			o.pods, o.parallel, o.running)
		report(os.Stdout, results, o.running)
		for _, r := range results {
			reportSteps(os.Stdout, r.name, r.steps)
		}
	}
	reportProbes(os.Stdout, results)
	reportStops(os.Stdout, results)
	reportSteady(os.Stdout, results)
	fmt.Printf("\nwhole run: %s\n", time.Since(began).Round(time.Second))
	// A lifecycle that failed is a runtime that misbehaved (its errors
	// are in the report): the run fails, after the report.
	for _, r := range results {
		if n := len(r.bench.Errors) + r.soakErrors; n > 0 {
			left = append(left, fmt.Errorf("%s: %d pod lifecycles failed", r.name, n))
		}
	}
	return errors.Join(left...)
}

// pushImages builds the busybox image and a pause image (berth-pause as
// /pause, for containerd's sandbox_image) and pushes both.
func pushImages(reg *testimage.Registry, bindir string) (busybox, pause string, err error) {
	img, err := testimage.Busybox(testimage.Spec{Name: "bench", Cmd: []string{"sh"}})
	if err != nil {
		return "", "", err
	}
	if _, busybox, err = reg.PushImage("busybox:bench", img); err != nil {
		return "", "", err
	}
	bin, err := os.ReadFile(filepath.Join(bindir, "berth-pause"))
	if err != nil {
		return "", "", err
	}
	img, err = testimage.Busybox(testimage.Spec{Name: "pause", Entrypoint: []string{"/pause"},
		Files: []testimage.File{{Path: "/pause", Content: string(bin), Mode: 0o755}}})
	if err != nil {
		return "", "", err
	}
	_, pause, err = reg.PushImage("pause:bench", img)
	return busybox, pause, err
}

// measure starts r, times the lifecycles, measures memory, and stops r
// (the stop's error, what r left behind, in res.stopErr).
func measure(o options, r *runtime, busybox string, extra ...string) (res result, err error) {
	res.name = r.name
	defer func() {
		if serr := r.stop(); serr != nil {
			res.stopErr = fmt.Errorf("%s: %w", r.name, serr)
		}
	}()
	fmt.Fprintf(os.Stderr, "== %s (dir %s)\n", r.name, r.dir)
	if err := r.start(); err != nil {
		return res, err
	}
	time.Sleep(time.Second)
	res.fresh, _ = readMem(r.pid())
	for _, ref := range append([]string{busybox}, extra...) {
		if err := r.pull(ref); err != nil {
			return res, err
		}
	}
	time.Sleep(2 * time.Second)
	res.idle, _ = readMem(r.pid())
	if o.lifecycles {
		if err := lifecycles(o, r, busybox, &res); err != nil {
			return res, err
		}
	}
	if o.probes > 0 {
		p, err := probeScenario(r, busybox, o.pid, o.probes, o.traced)
		if err != nil {
			return res, err
		}
		res.probes = &p
	}
	if o.stops > 0 {
		s, err := stopScenario(r, busybox, o.pid, o.stops)
		if err != nil {
			return res, err
		}
		res.stops = &s
	}
	if o.steady {
		s, err := steadyScenario(r, busybox, o.pid, o.steadyOpts)
		if err != nil {
			return res, err
		}
		res.steady = &s
	}
	if o.execs {
		if res.execs, err = traceExecs(o, r, busybox); err != nil {
			return res, err
		}
	}
	if o.soak > 0 {
		err = soak(o, r, busybox, &res)
	}
	return res, err
}

// lifecycles times o.pods pod lifecycles with berthctl bench and
// measures the daemon's and helpers' memory with o.running pods.
func lifecycles(o options, r *runtime, busybox string, res *result) (err error) {
	var before map[string]stepTime
	if r.metrics != "" {
		if before, err = readSteps(r.metrics); err != nil {
			return err
		}
	}
	t := time.Now()
	cmd := exec.Command(filepath.Join(o.bindir, "berthctl"), "-endpoint", "unix://"+r.socket, "-o", "json",
		"bench", "-pods", fmt.Sprint(o.pods), "-parallel", fmt.Sprint(o.parallel), "-image", busybox,
		"-pid", o.pid, "-log-dir", filepath.Join(r.dir, "pod-logs"))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	res.benchWall = time.Since(t)
	if err != nil {
		return fmt.Errorf("%s: berthctl bench: %w", r.name, err)
	}
	if err := json.Unmarshal(out, &res.bench); err != nil {
		return fmt.Errorf("%s: berthctl bench output: %w", r.name, err)
	}
	if r.metrics != "" {
		after, err := readSteps(r.metrics)
		if err != nil {
			return err
		}
		res.steps = stepsBetween(before, after)
	}
	time.Sleep(2 * time.Second)
	res.afterBench, _ = readMem(r.pid())

	ids, err := runPods(r, o.running, busybox, o.pid)
	if err == nil {
		time.Sleep(2 * time.Second)
		res.loaded, _ = readMem(r.pid())
		res.helpers = helperMem(r)
	}
	if rerr := removePods(r, ids); err == nil {
		err = rerr
	}
	return err
}

// soak runs o.soak more lifecycles and reads the daemon's memory before
// and after them: growth there is a leak.
func soak(o options, r *runtime, busybox string, res *result) error {
	time.Sleep(2 * time.Second)
	res.soakBefore, _ = readMem(r.pid())
	cmd := exec.Command(filepath.Join(o.bindir, "berthctl"), "-endpoint", "unix://"+r.socket, "-o", "json",
		"bench", "-pods", fmt.Sprint(o.soak), "-parallel", "8", "-image", busybox,
		"-pid", o.pid, "-log-dir", filepath.Join(r.dir, "pod-logs"))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("%s: soak: %w", r.name, err)
	}
	var sum benchSummary
	if err := json.Unmarshal(out, &sum); err != nil {
		return fmt.Errorf("%s: soak output: %w", r.name, err)
	}
	res.soakErrors = len(sum.Errors)
	time.Sleep(2 * time.Second)
	res.soakAfter, _ = readMem(r.pid())
	return nil
}
