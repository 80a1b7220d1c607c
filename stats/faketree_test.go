package stats

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// fakeV2 writes a cgroup v2 directory with the files the kernel has, and
// returns a function that rewrites the CPU usage.
func fakeV2(t testing.TB, root, path string, usageUsec, memCurrent, inactiveFile, memMax uint64) func(usageUsec uint64) {
	t.Helper()
	dir := filepath.Join(root, path)
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cpu := func(u uint64) {
		write("cpu.stat", fmt.Sprintf("usage_usec %d\nuser_usec %d\nsystem_usec %d\nnr_periods 10\nnr_throttled 2\nthrottled_usec 3000\n", u, u*3/4, u/4))
	}
	cpu(usageUsec)
	max := "max"
	if memMax > 0 {
		max = fmt.Sprint(memMax)
	}
	write("memory.current", fmt.Sprint(memCurrent))
	write("memory.max", max+"\n")
	write("memory.peak", fmt.Sprint(memCurrent+4096))
	write("memory.stat", fmt.Sprintf("anon %d\nfile %d\nkernel 8192\nfile_mapped 4096\ninactive_file %d\npgfault 1234\npgmajfault 5\n", memCurrent-inactiveFile-8192, inactiveFile, inactiveFile))
	write("memory.swap.current", "65536\n")
	write("memory.swap.max", "1048576\n")
	write("memory.events", "low 0\nhigh 0\nmax 3\noom 0\noom_kill 0\n")
	write("pids.current", "7\n")
	write("pids.max", "max\n")
	write("io.stat", "")
	psi := "some avg10=1.50 avg60=0.50 avg300=0.10 total=123456\nfull avg10=0.25 avg60=0.00 avg300=0.00 total=2345\n"
	write("cpu.pressure", psi)
	write("memory.pressure", psi)
	write("io.pressure", psi)
	return cpu
}

// fakeV1 writes the v1 hierarchies of a cgroup as <root>/<subsystem>/<path>.
func fakeV1(t testing.TB, root, path string, usageNanos, usage, inactiveFile uint64) {
	t.Helper()
	files := map[string]map[string]string{
		"cpuacct": {
			"cpuacct.usage":             fmt.Sprint(usageNanos),
			"cpuacct.stat":              "user 300\nsystem 100\n",
			"cpuacct.usage_percpu":      "1 2",
			"cpuacct.usage_percpu_user": "1 2",
			"cpuacct.usage_percpu_sys":  "1 2",
			"cpuacct.usage_all":         "cpu user system\n0 1 1",
		},
		"cpu": {"cpu.stat": "nr_periods 0\nnr_throttled 0\nthrottled_time 0"},
		"memory": {
			"memory.usage_in_bytes":     fmt.Sprint(usage),
			"memory.max_usage_in_bytes": fmt.Sprint(usage),
			"memory.limit_in_bytes":     "9223372036854771712",
			"memory.failcnt":            "0",
			"memory.stat": fmt.Sprintf("cache %d\nrss 1000\ntotal_cache %d\ntotal_rss %d\ntotal_inactive_file %d\ntotal_mapped_file 0\ntotal_pgfault 42\ntotal_pgmajfault 1",
				inactiveFile, inactiveFile, usage-inactiveFile, inactiveFile),
			"memory.use_hierarchy": "1",
		},
		"pids": {"pids.current": "3", "pids.max": "max"},
	}
	for sub, fs := range files {
		dir := filepath.Join(root, sub, path)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, content := range fs {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
