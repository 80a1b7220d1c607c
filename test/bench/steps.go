package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// stepMetric is berthd's histogram of the steps of each CRI operation
// (package steptrace); rpcMetric times the whole operations.
const (
	stepMetric = "berth_operation_step_seconds"
	rpcMetric  = "berth_rpc_duration_seconds"
)

// stepTime is one step's total time and count over the lifecycles.
type stepTime struct {
	op, step string
	sum      time.Duration
	count    uint64
}

// freeAddr is a free port on 127.0.0.1 for the daemon's metrics.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// readSteps scrapes the daemon's step histogram, and its RPC histogram
// as steps named "" (the whole operation, all codes together).
func readSteps(addr string) (map[string]stepTime, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parse %s metrics: %w", addr, err)
	}
	out := map[string]stepTime{}
	for _, name := range []string{stepMetric, rpcMetric} {
		for _, m := range fams[name].GetMetric() {
			st := stepTime{}
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "operation", "method":
					st.op = l.GetValue()
				case "step":
					st.step = l.GetValue()
				}
			}
			h := m.GetHistogram()
			k := st.op + "/" + st.step
			st.sum = out[k].sum + time.Duration(h.GetSampleSum()*float64(time.Second))
			st.count = out[k].count + h.GetSampleCount()
			out[k] = st
		}
	}
	return out, nil
}

// stepsBetween is what the lifecycles between two scrapes added.
func stepsBetween(before, after map[string]stepTime) []stepTime {
	var out []stepTime
	for k, a := range after {
		b := before[k]
		if a.count > b.count {
			out = append(out, stepTime{op: a.op, step: a.step, sum: a.sum - b.sum, count: a.count - b.count})
		}
	}
	return out
}

// reportSteps prints where the time of the pod-ready operations went: each
// step's mean per operation (a step run twice in one operation, such as
// "record", counts twice) over the lifecycles.
func reportSteps(w io.Writer, name string, steps []stepTime) {
	whole := map[string]stepTime{}
	for _, st := range steps {
		if st.step == "" {
			whole[st.op] = st
		}
	}
	if len(steps) == 0 {
		return
	}
	order := map[string]int{"RunPodSandbox": 0, "CreateContainer": 1, "StartContainer": 2}
	sort.Slice(steps, func(i, j int) bool {
		oi, iok := order[steps[i].op]
		oj, jok := order[steps[j].op]
		if iok != jok {
			return iok
		}
		if steps[i].op != steps[j].op {
			if iok {
				return oi < oj
			}
			return steps[i].op < steps[j].op
		}
		if (steps[i].step == "") != (steps[j].step == "") {
			return steps[i].step == ""
		}
		return steps[i].sum > steps[j].sum
	})
	fmt.Fprintf(w, "\n%s: where the time of the pod-ready operations went (berthd's %s; mean ms per operation; steps may overlap, a step taken twice counts twice)\n", name, stepMetric)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "operation\tstep\tmean ms\tshare")
	for _, st := range steps {
		op, ok := whole[st.op]
		if _, ready := order[st.op]; !ready || !ok || op.count == 0 {
			continue
		}
		perOp := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(op.count) }
		if st.step == "" {
			fmt.Fprintf(tw, "%s\t(whole, %d calls)\t%.2f\t100%%\n", st.op, op.count, perOp(st.sum))
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%.2f\t%.0f%%\n", st.op, st.step, perOp(st.sum), 100*float64(st.sum)/float64(op.sum))
	}
	tw.Flush()
}
