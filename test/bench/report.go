package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// benchSummary is `berthctl -o json bench`'s output.
type benchSummary struct {
	Steps []struct {
		Step   string  `json:"step"`
		N      int     `json:"n"`
		RawP50 float64 `json:"p50_ms"`
		RawP90 float64 `json:"p90_ms"`
		RawP99 float64 `json:"p99_ms"`
	} `json:"steps"`
	WallMS     float64  `json:"wall_ms"`
	PodsPerSec float64  `json:"pods_per_second"`
	Errors     []string `json:"errors"`
}

func (s benchSummary) step(name string) (p50, p90, p99 float64, ok bool) {
	for _, st := range s.Steps {
		if st.Step == name {
			return st.RawP50, st.RawP90, st.RawP99, true
		}
	}
	return 0, 0, 0, false
}

// report prints the phases side by side, then memory. The ratio columns
// are the first runtime over each other one.
func report(w io.Writer, rs []result, running int) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := []string{"phase (ms)"}
	for _, r := range rs {
		head = append(head, r.name+" p50/p90/p99")
	}
	for _, r := range rs[1:] {
		head = append(head, rs[0].name+"/"+r.name+" p50/p90/p99")
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, st := range rs[0].bench.Steps {
		row := []string{st.Step}
		var q []*[3]float64
		for _, r := range rs {
			a, b, c, ok := r.bench.step(st.Step)
			if !ok {
				row = append(row, "-")
				q = append(q, nil)
				continue
			}
			q = append(q, &[3]float64{a, b, c})
			row = append(row, fmt.Sprintf("%.1f / %.1f / %.1f", a, b, c))
		}
		// q[i] is nil where runtime i has no such step: "-" keeps the
		// columns in place.
		for _, o := range q[1:] {
			if q[0] == nil || o == nil {
				row = append(row, "-")
				continue
			}
			row = append(row, fmt.Sprintf("%.2f / %.2f / %.2f", q[0][0]/o[0], q[0][1]/o[1], q[0][2]/o[2]))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	row := []string{"pods/s"}
	for _, r := range rs {
		row = append(row, fmt.Sprintf("%.2f (%d errors)", r.bench.PodsPerSec, len(r.bench.Errors)))
	}
	for _, r := range rs[1:] {
		if r.bench.PodsPerSec > 0 {
			row = append(row, fmt.Sprintf("%.2f", rs[0].bench.PodsPerSec/r.bench.PodsPerSec))
		} else {
			row = append(row, "-")
		}
	}
	fmt.Fprintln(tw, strings.Join(row, "\t"))
	tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "memory (MiB)\tRSS\tPSS")
	for _, r := range rs {
		for _, m := range []struct {
			what string
			m    mem
		}{{"just started", r.fresh}, {"idle, images pulled", r.idle}, {"after lifecycles", r.afterBench}, {"with running pods", r.loaded}} {
			fmt.Fprintf(tw, "%s daemon, %s\t%.1f\t%.1f\n", r.name, m.what, float64(m.m.rss)/1024, float64(m.m.pss)/1024)
		}
		var all mem
		for _, h := range r.helpers {
			rss, pss := h.per()
			fmt.Fprintf(tw, "%s: %s, each of %d\t%.2f\t%.2f\n", r.name, h.role, h.n, rss, pss)
			all.rss += h.total.rss
			all.pss += h.total.pss
		}
		if running > 0 {
			fmt.Fprintf(tw, "%s: all helper processes, per running pod\t%.2f\t%.2f\n", r.name,
				float64(all.rss)/1024/float64(running), float64(all.pss)/1024/float64(running))
		}
	}
	tw.Flush()
	for _, r := range rs {
		if r.soakAfter.rss > 0 {
			fmt.Fprintf(w, "%s daemon RSS over the soak's lifecycles (%d errors): %.1f MiB before, %.1f MiB after (%+.1f)\n", r.name, r.soakErrors,
				float64(r.soakBefore.rss)/1024, float64(r.soakAfter.rss)/1024, float64(r.soakAfter.rss-r.soakBefore.rss)/1024)
		}
	}
	for _, r := range rs {
		if r.execs != nil {
			fmt.Fprintf(w, "%s: execs in one pod's lifecycle: %s\n", r.name, formatExecs(r.execs))
		}
	}
	for _, r := range rs {
		for _, e := range r.bench.Errors {
			fmt.Fprintf(w, "%s error: %s\n", r.name, e)
		}
	}
}

// reportProbes prints the ExecSync scenario side by side.
func reportProbes(w io.Writer, rs []result) {
	var have []result
	for _, r := range rs {
		if r.probes != nil {
			have = append(have, r)
		}
	}
	if len(have) == 0 {
		return
	}
	fmt.Fprintf(w, "\nExecSync `true` against one running container, one probe at a time (%d timed; processes counted over %d more under strace -f):\n",
		have[0].probes.n, have[0].probes.traced)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "runtime\tp50 ms\tp99 ms\tCPU ms/probe: daemon+helpers own / with reaped children\tprocesses/probe (server side + runtime)\texecs/probe\tcontainer's helper RSS/PSS MiB before -> after")
	for _, r := range have {
		p := r.probes
		per := func(n int) float64 {
			if p.traced == 0 {
				return 0
			}
			return float64(n) / float64(p.traced)
		}
		total := 0
		var names []string
		for k, v := range p.execs {
			total += v
			names = append(names, fmt.Sprintf("%s %.1f", k, per(v)))
		}
		sort.Strings(names)
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f / %.1f\t%.1f + %.1f\t%.1f (%s)\t%s %.2f/%.2f -> %.2f/%.2f\n", r.name, p.p50, p.p99, p.ownCPU, p.cpu,
			per(p.serverForks), per(p.rtForks), per(total), strings.Join(names, ", "), p.helperRole,
			float64(p.helperBefore.rss)/1024, float64(p.helperBefore.pss)/1024,
			float64(p.helperAfter.rss)/1024, float64(p.helperAfter.pss)/1024)
	}
	tw.Flush()
}

// reportStops prints the stop+remove scenario side by side.
func reportStops(w io.Writer, rs []result) {
	var have []result
	for _, r := range rs {
		if r.stops != nil {
			have = append(have, r)
		}
	}
	if len(have) == 0 {
		return
	}
	fmt.Fprintf(w, "\nEnding a one-container pod as kubelet does (StopContainer, grace 10 s, the container exits on SIGTERM; StopPodSandbox; RemovePodSandbox), one pod at a time:\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "runtime\tpods\tStopContainer p50/p99 ms\tStopPodSandbox p50/p99\tRemovePodSandbox p50/p99\tStopPodSandbox+RemovePodSandbox p50/p99")
	for _, r := range have {
		s := r.stops
		fmt.Fprintf(tw, "%s\t%d\t%.1f / %.1f\t%.1f / %.1f\t%.1f / %.1f\t%.1f / %.1f\n", r.name, s.n, s.ctr[0], s.ctr[1],
			s.stop[0], s.stop[1], s.remove[0], s.remove[1], s.both[0], s.both[1])
	}
	tw.Flush()
}
