package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// benchSet is critest's benchmark output file.
type benchSet struct {
	OperationsNames []string `json:"operationsNames"`
	NumParallel     int      `json:"numParallel"`
	Datapoints      []struct {
		StartTime             int64   `json:"startTime"`
		EndTime               int64   `json:"endTime"`
		OperationsDurationsNs []int64 `json:"operationsDurationsNs"`
	} `json:"datapoints"`
}

// printBench prints p50/p90/p99 of every operation in every benchmark
// file critest wrote to dir, and of each whole lifecycle.
func printBench(w io.Writer, dir string) error {
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) == 0 {
		return fmt.Errorf("no benchmark data in %s", dir)
	}
	fmt.Fprintf(w, "%-36s %-28s %6s %10s %10s %10s\n", "benchmark", "operation", "n", "p50", "p90", "p99")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var s benchSet
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("parse %s: %w", f, err)
		}
		name := strings.TrimSuffix(filepath.Base(f), "_benchmark_data.json")
		name = strings.TrimSuffix(name, ".json")
		for i, op := range s.OperationsNames {
			var ds []time.Duration
			for _, d := range s.Datapoints {
				if i < len(d.OperationsDurationsNs) {
					ds = append(ds, time.Duration(d.OperationsDurationsNs[i]))
				}
			}
			printPercentiles(w, name, op, ds)
		}
		if len(s.OperationsNames) < 2 {
			continue // the lifecycle is the one operation
		}
		var total []time.Duration
		for _, d := range s.Datapoints {
			total = append(total, time.Duration(d.EndTime-d.StartTime))
		}
		printPercentiles(w, name, "(whole lifecycle)", total)
	}
	return nil
}

func printPercentiles(w io.Writer, bench, op string, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	fmt.Fprintf(w, "%-36s %-28s %6d %10s %10s %10s\n", bench, op, len(ds),
		pct(ds, 50), pct(ds, 90), pct(ds, 99))
}

// pct is the nearest-rank percentile of sorted ds.
func pct(ds []time.Duration, p int) time.Duration {
	i := (p*len(ds)+99)/100 - 1
	if i < 0 {
		i = 0
	}
	return ds[i].Round(10 * time.Microsecond)
}
