package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The steady-state scenario of issue #25: a full node (kubelet's default
// of 110 pods) where every pod has an exec probe, measured as a node
// spends its life, not in a burst. What it costs is the server's and
// its per-container helpers' CPU and memory while nothing but probes
// happens.

// steadyOptions shape the scenario: pods, each probed every period, for
// window after one warm-up period; timeout is the probe's own (kubelet's
// timeoutSeconds, default 1 s).
type steadyOptions struct {
	pods    int
	period  time.Duration
	window  time.Duration
	timeout time.Duration
}

// steadyResult is what one server spent over the window.
type steadyResult struct {
	steadyOptions
	startWall time.Duration // starting the pods, one after another
	probes    int           // started within the window
	failures  int
	failSome  []string // the first few failures
	p50, p99  float64  // ms, probes within the window

	// CPU over the window, in ms, from /proc/PID/stat: own is utime+stime,
	// all adds the children each reaped (cutime+cstime: the runtime's
	// exec and the probe, a per-exec conmon for CRI-O, all counted where
	// they were reaped).
	serverOwn, serverAll   int64
	helpersOwn, helpersAll int64
	helpers                int // long-lived helper processes counted
	// cgroupCPU is the CPU (ms) of the containers' cgroups over the
	// window (cpuacct: the probes' processes once in the container's
	// cgroup, and whatever helpers the server puts there), read at their
	// lowest common ancestor cgroup; cgroup is its path, "" if none
	// below the root was found.
	cgroupCPU float64
	cgroup    string

	// Memory in KiB, at the end of the window and the highest sample
	// during it (sampled every 10 s or period, whichever is shorter).
	server, serverPeak   mem
	helpersMem, helpPeak mem
	roles                []roleMem // helpers by role at the end
}

// steadyScenario starts o.pods one-container pods (busybox sleep), runs a
// probe worker per pod (kubelet's: the first probe at an offset within
// the period, spread evenly here, then one every period, the next
// waiting when one runs long), lets one period pass, measures over the
// window, then removes the pods (also on failure).
func steadyScenario(r *runtime, image, pid string, o steadyOptions) (res steadyResult, err error) {
	res.steadyOptions = o
	type pod struct{ id, ctr string }
	var pods []pod
	defer func() {
		ids := make([]string, 0, len(pods))
		for _, p := range pods {
			ids = append(ids, p.id)
		}
		if rerr := removePods(r, ids); err == nil {
			err = rerr
		}
	}()
	fmt.Fprintf(os.Stderr, "%s: starting %d pods\n", r.name, o.pods)
	t := time.Now()
	for i := 0; i < o.pods; i++ {
		podID, ctrID, err := runPod(r, fmt.Sprintf("steady-%d", i), image, pid, sleeper)
		if podID != "" {
			pods = append(pods, pod{podID, ctrID})
		}
		if err != nil {
			return res, err
		}
	}
	res.startWall = time.Since(t)
	time.Sleep(5 * time.Second) // start-up's work settles (berthd releases memory after 1 s idle)

	var log probeLog
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i, p := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			probeWorker(ctx, r, p.ctr, time.Duration(i)*o.period/time.Duration(len(pods)), o, &log)
		}()
	}
	// Stopping the workers first, whatever happens below: no probe runs
	// while the pods are removed.
	defer func() { cancel(); wg.Wait() }()
	fmt.Fprintf(os.Stderr, "%s: %d pods started in %s; probing every %s, measuring for %s after one period\n",
		r.name, o.pods, res.startWall.Round(time.Millisecond), o.period, o.window)
	time.Sleep(o.period) // every pod probed once: first-exec costs are not the steady state

	helpers := steadyHelpers(r)
	res.helpers = len(helpers)
	cg := containersCgroup(r, helpers)
	cgBefore, cgOK := cpuacctUsage(cg)
	before := cpuByPid(append([]int{r.pid()}, helpers...))
	t0 := time.Now()
	sample := min(10*time.Second, o.period)
	for time.Since(t0) < o.window {
		time.Sleep(min(sample, o.window-time.Since(t0)))
		s, h, roles := steadyMem(r)
		res.server, res.helpersMem, res.roles = s, h, roles
		res.serverPeak = peak(res.serverPeak, s)
		res.helpPeak = peak(res.helpPeak, h)
	}
	t1 := time.Now()
	after := cpuByPid(append([]int{r.pid()}, helpers...))
	cgAfter, cgOK2 := cpuacctUsage(cg)
	if cgOK && cgOK2 {
		res.cgroup, res.cgroupCPU = cg, float64(cgAfter-cgBefore)/1e6
	}
	for _, pid := range append([]int{r.pid()}, helpers...) {
		b, ok1 := before[pid]
		a, ok2 := after[pid]
		if !ok1 || !ok2 {
			continue
		}
		if pid == r.pid() {
			res.serverOwn, res.serverAll = a[0]-b[0], a[1]-b[1]
		} else {
			res.helpersOwn += a[0] - b[0]
			res.helpersAll += a[1] - b[1]
		}
	}
	times, fails := log.between(t0, t1)
	res.probes = len(times) + len(fails)
	res.failures = len(fails)
	res.failSome = fails[:min(len(fails), 5)]
	res.p50, res.p99 = quantile(times, 0.50), quantile(times, 0.99)
	return res, nil
}

// probeLog is every probe's start, duration and failure.
type probeLog struct {
	mu      sync.Mutex
	entries []probeEntry
}

type probeEntry struct {
	at  time.Time
	d   time.Duration
	err error
}

func (l *probeLog) add(e probeEntry) {
	l.mu.Lock()
	l.entries = append(l.entries, e)
	l.mu.Unlock()
}

// between returns the durations of the probes started in [t0, t1) that
// succeeded, and what the failed ones said.
func (l *probeLog) between(t0, t1 time.Time) (ok []time.Duration, fails []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.entries {
		if e.at.Before(t0) || !e.at.Before(t1) {
			continue
		}
		if e.err != nil {
			fails = append(fails, e.err.Error())
		} else {
			ok = append(ok, e.d)
		}
	}
	return ok, fails
}

// probeWorker is kubelet's probe worker for one container: a first probe
// after offset, then one per period; a tick missed while a probe runs is
// dropped, as kubelet's ticker drops it.
func probeWorker(ctx context.Context, r *runtime, ctrID string, offset time.Duration, o steadyOptions, log *probeLog) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(offset):
	}
	tick := time.NewTicker(o.period)
	defer tick.Stop()
	for {
		t := time.Now()
		d, err := probeWithin(ctx, r, ctrID, o.timeout)
		if ctx.Err() != nil {
			return
		}
		log.add(probeEntry{t, d, err})
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// probeWithin runs one `true` ExecSync with the probe's timeout, as
// kubelet sends it (whole seconds, at least 1), and a client deadline a
// little longer, as kubelet's (timeout plus the runtime request's slack).
func probeWithin(ctx context.Context, r *runtime, ctrID string, timeout time.Duration) (time.Duration, error) {
	secs := max(int64(timeout/time.Second), 1)
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+2*time.Second)
	defer cancel()
	t := time.Now()
	resp, err := r.rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: ctrID, Cmd: []string{"true"}, Timeout: secs})
	d := time.Since(t)
	if err != nil {
		return d, err
	}
	if resp.ExitCode != 0 {
		return d, fmt.Errorf("exit code %d: %s", resp.ExitCode, strings.TrimSpace(string(resp.Stderr)))
	}
	return d, nil
}

// steadyHelpers are the server's long-lived helpers (monitors, shims,
// conmons, pause processes), not a per-exec one that happens to be
// running (CRI-O's `conmon -e`, crio's child: its CPU is in crio's
// reaped children).
func steadyHelpers(r *runtime) []int {
	var pids []int
	for _, p := range listProcs() {
		if role := r.role(p); role != "" && !strings.Contains(role, "(exec)") {
			pids = append(pids, p.pid)
		}
	}
	return pids
}

// steadyMem is the server's memory and the sum over its long-lived
// helpers now, and the helpers by role.
func steadyMem(r *runtime) (server, helpers mem, roles []roleMem) {
	server, _ = readMem(r.pid())
	for _, h := range helperMem(r) {
		if strings.Contains(h.role, "(exec)") {
			continue
		}
		roles = append(roles, h)
		helpers.rss += h.total.rss
		helpers.pss += h.total.pss
	}
	return server, helpers, roles
}

func peak(a, b mem) mem { return mem{max(a.rss, b.rss), max(a.pss, b.pss)} }

// cpuByPid reads each process's CPU in ms: own (utime+stime) and with
// the children it reaped (cutime+cstime too).
func cpuByPid(pids []int) map[int][2]int64 {
	out := map[int][2]int64{}
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 15 {
			continue
		}
		var v [4]int64
		for j := range v {
			v[j], _ = strconv.ParseInt(f[11+j], 10, 64)
		}
		out[pid] = [2]int64{(v[0] + v[1]) * 1000 / clockTicks, (v[0] + v[1] + v[2] + v[3]) * 1000 / clockTicks}
	}
	return out
}

// containersCgroup is the lowest cgroup (cpuacct hierarchy on v1, the
// unified one on v2) holding every container's init: the helpers'
// children. "" when there are none or they share only the root.
func containersCgroup(r *runtime, helpers []int) string {
	is := map[int]bool{}
	for _, h := range helpers {
		is[h] = true
	}
	var paths [][]string
	for _, p := range listProcs() {
		if !is[p.ppid] || p.comm != "sleep" {
			continue
		}
		if cg := cpuCgroup(p.cgroup); cg != "" {
			paths = append(paths, strings.Split(strings.Trim(cg, "/"), "/"))
		}
	}
	if len(paths) == 0 {
		return ""
	}
	common := paths[0]
	for _, p := range paths[1:] {
		n := 0
		for n < len(common) && n < len(p) && common[n] == p[n] {
			n++
		}
		common = common[:n]
	}
	if len(common) == 0 || common[0] == "" {
		return ""
	}
	return "/" + strings.Join(common, "/")
}

// cpuCgroup picks the CPU-accounting cgroup out of /proc/PID/cgroup: the
// v1 hierarchy with cpuacct, else the v2 one.
func cpuCgroup(procCgroup string) string {
	v2 := ""
	for _, l := range strings.Split(procCgroup, "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) != 3 {
			continue
		}
		if f[1] == "" {
			v2 = f[2]
		}
		for _, c := range strings.Split(f[1], ",") {
			if c == "cpuacct" {
				return f[2]
			}
		}
	}
	return v2
}

// cpuacctUsage reads a cgroup's CPU time in ns: cpuacct.usage on v1,
// cpu.stat's usage_usec on v2.
func cpuacctUsage(cg string) (int64, bool) {
	if cg == "" {
		return 0, false
	}
	for _, dir := range []string{"/sys/fs/cgroup/cpuacct", "/sys/fs/cgroup/cpu,cpuacct"} {
		if b, err := os.ReadFile(filepath.Join(dir, cg, "cpuacct.usage")); err == nil {
			v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			return v, err == nil
		}
	}
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", cg, "cpu.stat"))
	if err != nil {
		return 0, false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "usage_usec "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			return n * 1000, err == nil
		}
	}
	return 0, false
}

// reportSteady prints the steady-state scenario side by side, with the
// first runtime's CPU and memory over each other's.
func reportSteady(w io.Writer, rs []result) {
	var have []result
	for _, r := range rs {
		if r.steady != nil {
			have = append(have, r)
		}
	}
	if len(have) == 0 {
		return
	}
	o := have[0].steady.steadyOptions
	fmt.Fprintf(w, "\nSteady state: %d one-container pods (busybox sleep), an ExecSync `true` probe each every %s (timeout %s, spread evenly), measured over %s after one period:\n",
		o.pods, o.period, o.timeout, o.window)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "runtime\tpods started in s\tprobes (failed)\tprobe p50 / p99 ms\tCPU s server own / +reaped\thelpers own / +reaped\ttotal own / +reaped\tCPU ms per probe (total +reaped)\tcontainers' cgroup CPU s\tCPU % of one core")
	for _, r := range have {
		s := r.steady
		tot, totAll := s.serverOwn+s.helpersOwn, s.serverAll+s.helpersAll
		cg := "-"
		if s.cgroup != "" {
			cg = fmt.Sprintf("%.1f (%s)", s.cgroupCPU/1000, s.cgroup)
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%d (%d)\t%.1f / %.1f\t%.1f / %.1f\t%.1f / %.1f\t%.1f / %.1f\t%.2f\t%s\t%.1f\n", r.name, s.startWall.Seconds(),
			s.probes, s.failures, s.p50, s.p99,
			sec(s.serverOwn), sec(s.serverAll), sec(s.helpersOwn), sec(s.helpersAll), sec(tot), sec(totAll),
			float64(totAll)/float64(max(s.probes, 1)), cg, float64(totAll)/10/s.window.Seconds())
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "runtime\tserver RSS / PSS MB end (peak)\thelpers' sum RSS / PSS MB end (peak)\thelpers\tall per pod RSS / PSS MB\thelpers by role, each RSS / PSS MB")
	for _, r := range have {
		s := r.steady
		var roles []string
		for _, h := range s.roles {
			rss, pss := h.per()
			roles = append(roles, fmt.Sprintf("%s x%d %.2f / %.2f", h.role, h.n, rss, pss))
		}
		fmt.Fprintf(tw, "%s\t%.1f / %.1f (%.1f / %.1f)\t%.1f / %.1f (%.1f / %.1f)\t%d\t%.2f / %.2f\t%s\n", r.name,
			mb(s.server.rss), mb(s.server.pss), mb(s.serverPeak.rss), mb(s.serverPeak.pss),
			mb(s.helpersMem.rss), mb(s.helpersMem.pss), mb(s.helpPeak.rss), mb(s.helpPeak.pss), s.helpers,
			mb(s.server.rss+s.helpersMem.rss)/float64(s.pods), mb(s.server.pss+s.helpersMem.pss)/float64(s.pods),
			strings.Join(roles, "; "))
	}
	tw.Flush()
	b := have[0].steady
	for _, r := range have[1:] {
		s := r.steady
		fmt.Fprintf(w, "%s/%s: CPU total own %.2f, +reaped %.2f; memory server+helpers RSS %.2f, PSS %.2f; probe p50 %.2f, p99 %.2f\n",
			have[0].name, r.name,
			ratio(float64(b.serverOwn+b.helpersOwn), float64(s.serverOwn+s.helpersOwn)),
			ratio(float64(b.serverAll+b.helpersAll), float64(s.serverAll+s.helpersAll)),
			ratio(float64(b.server.rss+b.helpersMem.rss), float64(s.server.rss+s.helpersMem.rss)),
			ratio(float64(b.server.pss+b.helpersMem.pss), float64(s.server.pss+s.helpersMem.pss)),
			ratio(b.p50, s.p50), ratio(b.p99, s.p99))
	}
	for _, r := range have {
		for _, m := range r.steady.failSome {
			fmt.Fprintf(w, "%s probe failure: %s\n", r.name, m)
		}
	}
}

func sec(ms int64) float64 { return float64(ms) / 1000 }
func mb(kib int) float64   { return float64(kib) / 1024 }

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
