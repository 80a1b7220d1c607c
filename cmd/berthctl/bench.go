package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"sort"
	"sync"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func init() {
	register(&command{
		name:    "bench",
		usage:   "[-pods N] [-parallel P] [-image IMG] [-handler H] [-execs N] [-pid container|pod] [-log-dir DIR]",
		summary: "time whole pod lifecycles (and ExecSync) against the endpoint",
		run:     runBench,
	})
}

// benchSample is the duration of each step of one pod's lifecycle.
type benchSample map[string]time.Duration

// Steps in the order a pod goes through them.
var benchSteps = []string{"RunPodSandbox", "CreateContainer", "StartContainer", "ready", "ExecSync",
	"StopContainer", "RemoveContainer", "StopPodSandbox", "RemovePodSandbox", "total"}

func runBench(c *cli, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	pods := fs.Int("pods", 20, "pod lifecycles to run")
	parallel := fs.Int("parallel", 4, "lifecycles in flight at once")
	image := fs.String("image", "", "image for the container (pulled first); empty = pods only")
	handler := fs.String("handler", "", "runtime handler (RuntimeClass); empty = the default")
	execs := fs.Int("execs", 1, "ExecSync calls per container, timed together as one step")
	var shape podShape
	pid := fs.String("pid", "container", "PID namespace: container (kubelet's default) or pod (shareProcessNamespace)")
	fs.StringVar(&shape.logDir, "log-dir", "", "directory for the pods' log directories, as kubelet's /var/log/pods; empty = no container logs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *pods < 1 || *parallel < 1 {
		return fmt.Errorf("-pods and -parallel must be at least 1")
	}
	switch *pid {
	case "container":
		shape.pid = runtimeapi.NamespaceMode_CONTAINER
	case "pod":
		shape.pid = runtimeapi.NamespaceMode_POD
	default:
		return fmt.Errorf("-pid %q: container or pod", *pid)
	}
	if *image != "" {
		ctx, cancel := c.ctx()
		_, err := c.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: *image}})
		cancel()
		if err != nil {
			return fmt.Errorf("pull %s: %w", *image, err)
		}
	}
	run := newBenchRun()
	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < *parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				s, err := c.benchOne(i, shape, *image, *handler, *execs)
				run.add(s, err)
			}
		}()
	}
	start := time.Now()
	for i := 0; i < *pods; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	sum := run.summary(time.Since(start))
	return c.print(sum, []string{"STEP", "N", "P50", "P90", "P99", "MAX"}, sum.rows())
}

// benchOne runs one pod through its whole life and times each step. On
// failure it still tears the pod down, so a bench never leaves pods behind.
func (c *cli) benchOne(i int, shape podShape, image, handler string, execs int) (benchSample, error) {
	s := benchSample{}
	ctx := context.Background()
	timed := func(step string, f func(context.Context) error) error {
		cctx, cancel := context.WithTimeout(ctx, c.timeout)
		defer cancel()
		t := time.Now()
		err := f(cctx)
		s[step] += time.Since(t)
		if err != nil {
			return fmt.Errorf("%s: %w", step, err)
		}
		return nil
	}
	podCfg := shape.pod(i, randSuffix())
	if err := shape.makeLogDirs(podCfg); err != nil {
		return benchSample{}, err
	}
	begin := time.Now()
	var podID string
	err := timed("RunPodSandbox", func(ctx context.Context) error {
		r, err := c.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podCfg, RuntimeHandler: handler})
		podID = r.GetPodSandboxId()
		return err
	})
	if err == nil && image != "" {
		err = c.benchContainer(timed, podID, podCfg, shape.container(image), execs)
	}
	// "ready" is what kubelet waits for before a pod runs: its sandbox,
	// then its container created and started.
	if _, ok := s["StartContainer"]; ok {
		s["ready"] = s["RunPodSandbox"] + s["CreateContainer"] + s["StartContainer"]
	}
	if podID != "" {
		if e := timed("StopPodSandbox", func(ctx context.Context) error {
			_, err := c.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID})
			return err
		}); err == nil {
			err = e
		}
		if e := timed("RemovePodSandbox", func(ctx context.Context) error {
			_, err := c.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID})
			return err
		}); err == nil {
			err = e
		}
	}
	s["total"] = time.Since(begin)
	return s, err
}

func (c *cli) benchContainer(timed func(string, func(context.Context) error) error, podID string, podCfg *runtimeapi.PodSandboxConfig, ctrCfg *runtimeapi.ContainerConfig, execs int) error {
	var ctrID string
	err := timed("CreateContainer", func(ctx context.Context) error {
		r, err := c.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
			PodSandboxId:  podID,
			SandboxConfig: podCfg,
			Config:        ctrCfg,
		})
		ctrID = r.GetContainerId()
		return err
	})
	if err == nil {
		err = timed("StartContainer", func(ctx context.Context) error {
			_, err := c.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: ctrID})
			return err
		})
	}
	for n := 0; err == nil && n < execs; n++ {
		err = timed("ExecSync", func(ctx context.Context) error {
			r, err := c.rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: ctrID, Cmd: []string{"true"}, Timeout: 10})
			if err == nil && r.ExitCode != 0 {
				err = fmt.Errorf("exit code %d: %s", r.ExitCode, r.Stderr)
			}
			return err
		})
	}
	if ctrID != "" {
		if e := timed("StopContainer", func(ctx context.Context) error {
			_, err := c.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: ctrID, Timeout: 0})
			return err
		}); err == nil {
			err = e
		}
		if e := timed("RemoveContainer", func(ctx context.Context) error {
			_, err := c.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: ctrID})
			return err
		}); err == nil {
			err = e
		}
	}
	return err
}

func randSuffix() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// benchRun gathers samples from all workers.
type benchRun struct {
	mu     sync.Mutex
	steps  map[string][]time.Duration
	errors []string
}

func newBenchRun() *benchRun { return &benchRun{steps: map[string][]time.Duration{}} }

func (r *benchRun) add(s benchSample, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, v := range s {
		r.steps[k] = append(r.steps[k], v)
	}
	if err != nil {
		r.errors = append(r.errors, err.Error())
	}
}

type benchStep struct {
	Step string  `json:"step"`
	N    int     `json:"n"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
}

type benchSummary struct {
	Steps      []benchStep `json:"steps"`
	WallMS     float64     `json:"wall_ms"`
	PodsPerSec float64     `json:"pods_per_second"`
	Errors     []string    `json:"errors,omitempty"`
}

func (r *benchRun) summary(wall time.Duration) benchSummary {
	out := benchSummary{WallMS: ms(wall), Errors: r.errors}
	for _, step := range benchSteps {
		d := r.steps[step]
		if len(d) == 0 {
			continue
		}
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		q := func(p float64) float64 { return ms(d[int(p*float64(len(d)-1))]) }
		out.Steps = append(out.Steps, benchStep{Step: step, N: len(d), P50: q(0.5), P90: q(0.9), P99: q(0.99), Max: ms(d[len(d)-1])})
	}
	if n := len(r.steps["total"]); n > 0 {
		out.PodsPerSec = float64(n) / wall.Seconds()
	}
	return out
}

func (s benchSummary) rows() [][]string {
	var rows [][]string
	for _, st := range s.Steps {
		rows = append(rows, []string{st.Step, fmt.Sprint(st.N), fmtMS(st.P50), fmtMS(st.P90), fmtMS(st.P99), fmtMS(st.Max)})
	}
	rows = append(rows, []string{"wall", fmtMS(s.WallMS), fmt.Sprintf("%.2f pods/s", s.PodsPerSec), "", "", ""})
	for _, e := range s.Errors {
		rows = append(rows, []string{"error", e, "", "", "", ""})
	}
	return rows
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func fmtMS(v float64) string { return fmt.Sprintf("%.1fms", v) }
