package stats

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"
)

// writeFiles adds files to a fake cgroup directory.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// openSocket gives this test process (the fake cgroup's only member) a
// socket to count.
func openSocket(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
}

// series returns the first value of each metric, and all series by name.
func series(vs []Value) (first map[string]uint64, all map[string][]Value) {
	first, all = map[string]uint64{}, map[string][]Value{}
	for _, v := range vs {
		if _, ok := first[v.Name]; !ok {
			first[v.Name] = v.Value
		}
		all[v.Name] = append(all[v.Name], v)
	}
	return first, all
}

func checkCommon(t *testing.T, got map[string]uint64, all map[string][]Value, started time.Time) {
	t.Helper()
	if got["container_start_time_seconds"] != uint64(started.Unix()) {
		t.Errorf("start time %d, want %d", got["container_start_time_seconds"], started.Unix())
	}
	if ls := got["container_last_seen"]; ls < uint64(started.Unix()) {
		t.Errorf("last seen %d before start", ls)
	}
	// This process, the cgroup's member, holds a socket and its
	// descriptors.
	if got["container_sockets"] < 1 || got["container_file_descriptors"] <= got["container_sockets"] {
		t.Errorf("fds %d, sockets %d", got["container_file_descriptors"], got["container_sockets"])
	}
	if got["container_oom_events_total"] != 2 {
		t.Errorf("oom events %d, want 2", got["container_oom_events_total"])
	}
	if got["container_fs_reads_bytes_total"] != 1024 || got["container_fs_writes_bytes_total"] != 2048 ||
		got["container_fs_reads_total"] != 3 || got["container_fs_writes_total"] != 4 {
		t.Errorf("fs io: %v", got)
	}
	blk := map[string]uint64{}
	for _, v := range all["container_blkio_device_usage_total"] {
		l := v.Labels[len(v.Labels)-4:]
		if l[1] != "7" || l[2] != "123" {
			t.Errorf("blkio labels %v", l)
		}
		blk[l[3]] = v.Value
	}
	if blk["Read"] != 1024 || blk["Write"] != 2048 {
		t.Errorf("blkio by op: %v", blk)
	}
	if got["container_spec_cpu_period"] != 100000 || got["container_spec_cpu_quota"] != 20000 {
		t.Errorf("cfs period %d quota %d", got["container_spec_cpu_period"], got["container_spec_cpu_quota"])
	}
}

func TestCgroupV2Extras(t *testing.T) {
	root := t.TempDir()
	fakeV2(t, root, "/p/c", 1000, 64<<20, 0, 64<<20)
	writeFiles(t, filepath.Join(root, "/p/c"), map[string]string{
		"io.stat":         "7:123 rbytes=1024 wbytes=2048 rios=3 wios=4 dbytes=0 dios=0",
		"cpu.max":         "20000 100000",
		"cpu.weight":      "100", // opencontainers/cgroups' weight for shares 1024
		"memory.low":      "16777216",
		"memory.swap.max": "0",
		"memory.events":   "low 0\nhigh 0\nmax 3\noom 2\noom_kill 2",
		"pids.max":        "100",
		"cgroup.procs":    fmt.Sprint(os.Getpid()),
	})
	openSocket(t)
	c := v2Collector(t, root, time.Nanosecond)
	s, err := c.Container(context.Background(), "c", "/p/c")
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now().Add(-time.Hour)
	got, all := series(ContainerMetrics(Identity{Container: "app", Started: started}, s))
	checkCommon(t, got, all, started)
	if got["container_threads"] != 7 || got["container_threads_max"] != 100 {
		t.Errorf("threads %d max %d", got["container_threads"], got["container_threads_max"])
	}
	if sh := got["container_spec_cpu_shares"]; sh < 990 || sh > 1030 { // the mapping rounds
		t.Errorf("shares %d from weight 100, want about 1024", sh)
	}
	if got["container_spec_memory_reservation_limit_bytes"] != 16<<20 {
		t.Errorf("reservation %d", got["container_spec_memory_reservation_limit_bytes"])
	}
	// No swap beyond the memory limit: memory+swap is the memory limit.
	if got["container_spec_memory_swap_limit_bytes"] != 64<<20 {
		t.Errorf("swap limit %d", got["container_spec_memory_swap_limit_bytes"])
	}
}

func TestCgroupV1Extras(t *testing.T) {
	root := t.TempDir()
	path := "/berth/pod-1/berth-c"
	fakeV1(t, root, path, 7_000_000_000, 50<<20, 10<<20)
	writeFiles(t, filepath.Join(root, "blkio", path), map[string]string{
		"blkio.throttle.io_service_bytes_recursive": "7:123 Read 1024\n7:123 Write 2048\n7:123 Sync 0\n7:123 Async 3072\n7:123 Discard 0\n7:123 Total 3072\nTotal 3072",
		"blkio.throttle.io_serviced_recursive":      "7:123 Read 3\n7:123 Write 4\n7:123 Sync 0\n7:123 Async 7\n7:123 Discard 0\n7:123 Total 7\nTotal 7",
	})
	writeFiles(t, filepath.Join(root, "cpu", path), map[string]string{
		"cpu.cfs_period_us": "100000",
		"cpu.cfs_quota_us":  "20000",
		"cpu.shares":        "1024",
	})
	writeFiles(t, filepath.Join(root, "memory", path), map[string]string{
		"memory.memsw.limit_in_bytes": "67108864",
		"memory.soft_limit_in_bytes":  "9223372036854771712",
		"memory.oom_control":          "oom_kill_disable 0\nunder_oom 0\noom_kill 2",
	})
	writeFiles(t, filepath.Join(root, "pids", path), map[string]string{
		"pids.max":     "max",
		"cgroup.procs": fmt.Sprint(os.Getpid()),
	})
	openSocket(t)
	v2 := false
	c := New(Options{CgroupRoot: root, CgroupV2: &v2})
	s, err := c.Container(context.Background(), "c", path)
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now().Add(-time.Minute)
	got, all := series(ContainerMetrics(Identity{Container: "app", Started: started}, s))
	checkCommon(t, got, all, started)
	if got["container_threads"] != 3 || got["container_threads_max"] != 0 {
		t.Errorf("threads %d max %d", got["container_threads"], got["container_threads_max"])
	}
	if got["container_spec_cpu_shares"] != 1024 || got["container_spec_memory_swap_limit_bytes"] != 64<<20 {
		t.Errorf("shares %d swap limit %d", got["container_spec_cpu_shares"], got["container_spec_memory_swap_limit_bytes"])
	}
	if r, ok := got["container_spec_memory_reservation_limit_bytes"]; !ok || r != 0 {
		t.Errorf("unlimited reservation: %d %v", r, ok)
	}
	if n := len(all["container_blkio_device_usage_total"]); n != 6 {
		t.Errorf("%d blkio series, want one per operation (6)", n)
	}
}

// weightToShares inverts the library's mapping: shares written as a
// weight read back as shares of that same weight (weights are whole
// numbers, so small shares share one), and 1024 as 1024.
func TestWeightToSharesInvertsTheLibrary(t *testing.T) {
	for _, sh := range []uint64{2, 10, 102, 256, 512, 1024, 2048, 10000, 262144} {
		w := cgroups.ConvertCPUSharesToCgroupV2Value(sh)
		if got := weightToShares(w); cgroups.ConvertCPUSharesToCgroupV2Value(got) != w {
			t.Errorf("shares %d -> weight %d -> shares %d -> weight %d", sh, w, got, cgroups.ConvertCPUSharesToCgroupV2Value(got))
		}
	}
	if got := weightToShares(100); got != 1024 {
		t.Errorf("weight 100 (the default) -> shares %d, want 1024", got)
	}
}
