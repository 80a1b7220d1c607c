package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The node-scale scenarios of issue #25: what a busy node spends its
// runtime's time on after start-up. kubelet runs every exec probe through
// ExecSync, and every rollout stops and removes pods.

// probeResult is the ExecSync scenario's account: a `true` probe against
// one running container, run one after another.
type probeResult struct {
	n        int
	p50, p99 float64 // ms
	// cpu is the daemon's and its helper processes' CPU per probe (ms):
	// user+system of each, with the children each reaped (so the
	// runtime's exec, and a per-exec monitor, count where they were
	// reaped: in the daemon, the container's monitor, or the shim).
	cpu float64
	// ownCPU is the same processes' CPU without the children they
	// reaped: the daemon's and the long-lived helpers' own work (a
	// monitor spawned per exec is the daemon's child, so only cpu has
	// it).
	ownCPU float64
	// traced is how many probes the strace pass watched; the counts
	// are over them. forks are the processes (not threads) created:
	// by the server's side (daemon, monitors, shims) and by the OCI
	// runtime's processes (runc, berth-runner and their re-execs).
	traced      int
	serverForks int
	rtForks     int
	execs       map[string]int
	// helperBefore and helperAfter are the container's long-lived
	// helper (its berth-monitor, or the pod's shim) before and after
	// the probes.
	helperBefore, helperAfter mem
	helperRole                string
}

// stopResult is the stop+remove scenario's account: kubelet's way of
// ending a pod with one running container (StopContainer with a grace
// period, StopPodSandbox, RemovePodSandbox), one pod at a time.
type stopResult struct {
	n int
	// p50 and p99 in ms of StopContainer, StopPodSandbox,
	// RemovePodSandbox, and the pod's StopPodSandbox+RemovePodSandbox.
	ctr, stop, remove, both [2]float64
}

// sleeper is a container that sleeps; stopper one that sleeps and exits
// at once on SIGTERM (as pid 1 without a handler, sleep would ignore it
// and every stop would take the whole grace period).
var (
	sleeper = []string{"sleep", "3600"}
	stopper = []string{"sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"}
)

// runPod starts one pod with a busybox container running cmd and
// returns the sandbox and container ids (the sandbox's also on error).
func runPod(r *runtime, name, image, pid string, cmd []string) (podID, ctrID string, err error) {
	mode := runtimeapi.NamespaceMode_CONTAINER
	if pid == "pod" {
		mode = runtimeapi.NamespaceMode_POD
	}
	ns := &runtimeapi.NamespaceOption{Pid: mode}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "bench-probe", Uid: fmt.Sprintf("%s-%d", name, time.Now().UnixNano())},
		Hostname: name,
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: ns},
		},
	}
	pod, err := r.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		return "", "", fmt.Errorf("%s: run pod %s: %w", r.name, name, err)
	}
	ctr, err := r.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: pod.PodSandboxId, SandboxConfig: cfg,
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "sleep"},
			Image:    &runtimeapi.ImageSpec{Image: image, UserSpecifiedImage: image}, // as kubelet; CRI-O needs it
			Command:  cmd,
			Linux: &runtimeapi.LinuxContainerConfig{
				SecurityContext: &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: ns},
			},
		},
	})
	if err != nil {
		return pod.PodSandboxId, "", fmt.Errorf("%s: create container in %s: %w", r.name, name, err)
	}
	if _, err := r.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: ctr.ContainerId}); err != nil {
		return pod.PodSandboxId, "", fmt.Errorf("%s: start container in %s: %w", r.name, name, err)
	}
	return pod.PodSandboxId, ctr.ContainerId, nil
}

// probe runs one `true` ExecSync and checks it exited 0.
func probe(r *runtime, ctrID string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t := time.Now()
	resp, err := r.rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: ctrID, Cmd: []string{"true"}, Timeout: 10})
	d := time.Since(t)
	if err != nil {
		return d, fmt.Errorf("%s: ExecSync: %w", r.name, err)
	}
	if resp.ExitCode != 0 {
		return d, fmt.Errorf("%s: ExecSync true: exit code %d: %s", r.name, resp.ExitCode, resp.Stderr)
	}
	return d, nil
}

// probeScenario runs n probes against one fresh pod's container (after a
// few unmeasured ones), then watches a few more under strace to count the
// processes they spawn, and removes the pod.
func probeScenario(r *runtime, image, pid string, n, traced int) (res probeResult, err error) {
	podID, ctrID, err := runPod(r, "probe", image, pid, sleeper)
	if podID != "" {
		defer func() {
			if rerr := removePods(r, []string{podID}); err == nil {
				err = rerr
			}
		}()
	}
	if err != nil {
		return res, err
	}
	for i := 0; i < 5; i++ {
		if _, err := probe(r, ctrID); err != nil {
			return res, err
		}
	}
	helpers := helperPids(r)
	res.helperRole, res.helperBefore = containerHelper(r, helpers)
	ownBefore, cpuBefore := cpuOf(append([]int{r.pid()}, helpers...))
	times := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		d, err := probe(r, ctrID)
		if err != nil {
			return res, err
		}
		times = append(times, d)
	}
	time.Sleep(500 * time.Millisecond) // the last exec's processes are reaped
	ownAfter, cpuAfter := cpuOf(append([]int{r.pid()}, helpers...))
	_, res.helperAfter = containerHelper(r, helpers)
	res.n = n
	res.p50, res.p99 = quantile(times, 0.50), quantile(times, 0.99)
	res.cpu = float64(cpuAfter-cpuBefore) / float64(n)
	res.ownCPU = float64(ownAfter-ownBefore) / float64(n)

	if traced > 0 {
		res.traced = traced
		res.serverForks, res.rtForks, res.execs, err = traceProbes(r, ctrID, helpers, traced)
	}
	return res, err
}

// helperPids are the runtime's long-lived helper processes now (monitors
// and pause processes; shims and pause processes).
func helperPids(r *runtime) []int {
	var pids []int
	for _, p := range listProcs() {
		if r.role(p) != "" {
			pids = append(pids, p.pid)
		}
	}
	return pids
}

// containerHelper is the memory of the probed container's own helper:
// with one pod running, the runtime's only monitor or conmon not of the
// infra, or its only shim.
func containerHelper(r *runtime, pids []int) (string, mem) {
	procs := listProcs()
	for _, p := range procs {
		role := r.role(p)
		if role != "berth-monitor" && role != "containerd-shim" && role != "conmon" {
			continue
		}
		if role != "containerd-shim" && monitorsInfra(p.pid, procs) {
			continue
		}
		m, _ := readMem(p.pid)
		return role, m
	}
	return "", mem{}
}

// monitorsInfra says whether monitor (or conmon) pid supervises a pod's
// infra process (berth-pause, known by its comm).
func monitorsInfra(pid int, procs []proc) bool {
	for _, p := range procs {
		if p.ppid == pid && p.comm == "pause" {
			return true
		}
	}
	return false
}

// cpuOf sums the CPU (in ms) of the processes (utime and stime of
// /proc/PID/stat), and of them and the children they reaped (cutime and
// cstime too): cpuByPid's, added up.
func cpuOf(pids []int) (own, all int64) {
	for _, c := range cpuByPid(pids) {
		own += c[0]
		all += c[1]
	}
	return own, all
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times; 100 on every
// Linux architecture Berth runs on.
const clockTicks = 100

// cloneLine matches strace's process-creating calls, whole or the first
// half of an interrupted one; resumedLine the second half.
var (
	cloneLine   = regexp.MustCompile(`^(\d+)\s+(clone3?|fork|vfork)\((.*?)(?:<unfinished \.\.\.>|= (-?\d+))`)
	resumedLine = regexp.MustCompile(`^(\d+)\s+<\.\.\. (clone3?|fork|vfork) resumed>.*= (-?\d+)`)
)

// isRuntime says whether a program is the OCI runtime: runc,
// berth-runner, or their re-execs of themselves through /proc.
func isRuntime(prog string) bool {
	return prog == "runc" || prog == "berth-runner" || strings.HasPrefix(prog, "/proc/self/")
}

// traceProbes runs n probes with strace -f attached to the daemon and
// its helpers, and counts the processes (not threads) created meanwhile,
// by whom (the server's side or the runtime: a process is what it last
// executed, or its parent's until it executes), and the programs
// executed.
func traceProbes(r *runtime, ctrID string, helpers []int, n int) (serverForks, rtForks int, execs map[string]int, err error) {
	out := filepath.Join(r.dir, "probes.strace")
	args := []string{"-f", "-qq", "-e", "trace=clone,clone3,fork,vfork,execve", "-s", "256", "-o", out}
	for _, pid := range append([]int{r.pid()}, helpers...) {
		args = append(args, "-p", strconv.Itoa(pid))
	}
	st := exec.Command("strace", args...)
	st.Stderr = os.Stderr
	if err := st.Start(); err != nil {
		return 0, 0, nil, fmt.Errorf("strace: %w", err)
	}
	time.Sleep(time.Second) // attached to every thread first
	var perr error
	for i := 0; i < n && perr == nil; i++ {
		_, perr = probe(r, ctrID)
	}
	time.Sleep(time.Second)
	st.Process.Signal(syscall.SIGINT)
	st.Wait()
	if perr != nil {
		return 0, 0, nil, perr
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return 0, 0, nil, err
	}
	lines := strings.Split(string(b), "\n")
	// First every clone and exec, then whose each process clone was:
	// strace -f may print a child's calls before its parent's clone
	// returns, so a process's program is known only at the end.
	type clone struct {
		at            int
		caller, child string
		thread        bool
	}
	type execd struct {
		at   int
		prog string
	}
	var clones []clone
	parent := map[string]string{}
	execs = map[string]int{}
	execsOf := map[string][]execd{}
	pendingThread := map[string]bool{} // pid -> its unfinished clone makes a thread
	pendingExec := map[string]string{}
	for i, line := range lines {
		if m := cloneLine.FindStringSubmatch(line); m != nil {
			thread := strings.Contains(m[3], "CLONE_THREAD")
			if m[4] == "" {
				pendingThread[m[1]] = thread
			} else if v, _ := strconv.Atoi(m[4]); v > 0 {
				clones = append(clones, clone{i, m[1], m[4], thread})
				parent[m[4]] = m[1]
			}
			continue
		}
		if m := resumedLine.FindStringSubmatch(line); m != nil {
			thread, ok := pendingThread[m[1]]
			delete(pendingThread, m[1])
			if v, _ := strconv.Atoi(m[3]); ok && v > 0 {
				clones = append(clones, clone{i, m[1], m[3], thread})
				parent[m[3]] = m[1]
			}
			continue
		}
		if m := execLine.FindStringSubmatch(line); m != nil {
			if m[2] != "" {
				pendingExec[m[1]] = m[2]
			}
			if strings.HasSuffix(strings.TrimSpace(line), "= 0") {
				prog := progName(pendingExec[m[1]])
				execsOf[m[1]] = append(execsOf[m[1]], execd{i, prog})
				execs[prog]++
				delete(pendingExec, m[1])
			}
		}
	}
	// progAt is what pid ran at line at: its last exec before it, else
	// its parent's program ("" for the daemon's and helpers' own).
	var progAt func(pid string, at, depth int) string
	progAt = func(pid string, at, depth int) string {
		for i := len(execsOf[pid]) - 1; i >= 0; i-- {
			if execsOf[pid][i].at < at {
				return execsOf[pid][i].prog
			}
		}
		if p, ok := parent[pid]; ok && depth < 64 {
			return progAt(p, at, depth+1)
		}
		return ""
	}
	for _, c := range clones {
		switch {
		case c.thread:
		case isRuntime(progAt(c.caller, c.at, 0)):
			rtForks++
		default:
			serverForks++
		}
	}
	return serverForks, rtForks, execs, nil
}

// countExecs counts strace -f's successful execve calls by program.
func countExecs(lines []string) map[string]int {
	counts := map[string]int{}
	pending := map[string]string{}
	for _, line := range lines {
		m := execLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if m[2] != "" {
			pending[m[1]] = m[2]
		}
		if strings.HasSuffix(strings.TrimSpace(line), "= 0") {
			counts[progName(pending[m[1]])]++
			delete(pending, m[1])
		}
	}
	return counts
}

// stopScenario starts n one-container pods, then ends them one at a
// time as kubelet does (the container first, with a 10 s grace period
// its SIGTERM trap makes unneeded), timing each call.
func stopScenario(r *runtime, image, pid string, n int) (res stopResult, err error) {
	type pod struct{ id, ctr string }
	var pods []pod
	defer func() {
		// What the timed loop did not remove (on error).
		var ids []string
		for _, p := range pods {
			ids = append(ids, p.id)
		}
		if rerr := removePods(r, ids); err == nil {
			err = rerr
		}
	}()
	for i := 0; i < n; i++ {
		podID, ctrID, err := runPod(r, fmt.Sprintf("stop-%d", i), image, pid, stopper)
		if podID != "" {
			pods = append(pods, pod{podID, ctrID})
		}
		if err != nil {
			return res, err
		}
	}
	time.Sleep(time.Second) // the shells have set their traps
	var ctrs, stops, removes, boths []time.Duration
	for len(pods) > 0 {
		p := pods[0]
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		t0 := time.Now()
		_, cerr := r.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: p.ctr, Timeout: 10})
		t1 := time.Now()
		_, serr := r.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.id})
		t2 := time.Now()
		_, rerr := r.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.id})
		t3 := time.Now()
		cancel()
		if err := errors.Join(cerr, serr, rerr); err != nil {
			return res, fmt.Errorf("%s: stop and remove pod: %w", r.name, err)
		}
		pods = pods[1:]
		ctrs, stops = append(ctrs, t1.Sub(t0)), append(stops, t2.Sub(t1))
		removes, boths = append(removes, t3.Sub(t2)), append(boths, t3.Sub(t1))
	}
	res.n = len(boths)
	for _, q := range []struct {
		d   []time.Duration
		out *[2]float64
	}{{ctrs, &res.ctr}, {stops, &res.stop}, {removes, &res.remove}, {boths, &res.both}} {
		q.out[0], q.out[1] = quantile(q.d, 0.50), quantile(q.d, 0.99)
	}
	return res, nil
}

// quantile is the q-th sample of ds by rank (nearest rank), in ms.
func quantile(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(q*float64(len(s))+0.5) - 1
	i = max(0, min(i, len(s)-1))
	return float64(s[i].Microseconds()) / 1000
}
