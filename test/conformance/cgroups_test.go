package conformance

import (
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
)

func TestMemoryLimitOOMKill(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *ociRuntime) {
		c := newContainer(t, rt)
		limit := int64(32 << 20)
		c.spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit, Swap: &limit}
		// The shell grows one 64MiB string: over the limit, the kernel's
		// OOM killer kills it with SIGKILL.
		c.spec.Process.Args = []string{"sh", "-c", `cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; x=$(head -c 67108864 /dev/zero | tr '\0' a); echo survived`}
		c.create()
		c.start()
		code := c.wait(60 * time.Second)
		out := readFile(c.stdout)
		if !strings.HasPrefix(out, "33554432\n") {
			t.Errorf("memory limit seen inside: %q", out)
		}
		if strings.Contains(out, "survived") || code != 137 {
			t.Fatalf("exit %d, output %q: want killed by SIGKILL (137) for exceeding the limit", code, out)
		}
	})
}

func TestPidsLimit(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *ociRuntime) {
		c := newContainer(t, rt)
		limit := int64(8)
		c.spec.Linux.Resources.Pids = &specs.LinuxPids{Limit: &limit}
		out := c.sh(`cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max
			(for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do sleep 5 & done) 2>/dev/null
			set -- /proc/[0-9]*; echo started=$#; kill -9 -1; true`)
		if !strings.HasPrefix(out, "8\n") {
			t.Fatalf("pids.max seen inside: %q", out)
		}
		var procs int
		for _, l := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(l, "started="); ok {
				procs = atoi(v)
			}
		}
		if procs == 0 || procs > 8 {
			t.Fatalf("%d processes in the container with pids.max 8:\n%s", procs, out)
		}
	})
}

func TestCgroupResourcesAndUpdate(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *ociRuntime) {
		c := newContainer(t, rt)
		shares, quota, period := uint64(512), int64(50000), uint64(100000)
		limit, reservation := int64(64<<20), int64(32<<20)
		c.spec.Linux.Resources.CPU = &specs.LinuxCPU{Shares: &shares, Quota: &quota, Period: &period, Cpus: "0"}
		c.spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit, Reservation: &reservation}
		c.startSleeping()
		read := func(files ...string) string {
			t.Helper()
			r := c.exec(nil, append([]string{"cat"}, files...)...)
			if r.code != 0 {
				t.Fatalf("exec cat: %s", r)
			}
			return r.stdout
		}
		files := []string{
			"/sys/fs/cgroup/cpu/cpu.shares", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us",
			"/sys/fs/cgroup/cpuset/cpuset.cpus", "/sys/fs/cgroup/memory/memory.limit_in_bytes",
			"/sys/fs/cgroup/memory/memory.soft_limit_in_bytes",
		}
		if !isCgroupV1() {
			t.Skip("this check reads cgroup v1 files; the host is on cgroup v2")
		}
		if got, want := read(files...), "512\n50000\n100000\n0\n67108864\n33554432\n"; got != want {
			t.Fatalf("cgroup files: got %q, want %q", got, want)
		}
		r := c.rt.run("update", "--memory", "128M", "--cpu-quota", "20000", "--pids-limit", "50", c.id)
		if r.code != 0 {
			t.Fatalf("update: %s", r)
		}
		if got, want := read(files[1], files[4], "/sys/fs/cgroup/pids/pids.max"), "20000\n134217728\n50\n"; got != want {
			t.Fatalf("after update: got %q, want %q", got, want)
		}
		cmd := c.rt.command("update", "--resources", "-", c.id)
		cmd.Stdin = strings.NewReader(`{"memory": {"limit": 100663296}, "cpu": {"shares": 256}}`)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("update --resources -: %v: %s", err, out)
		}
		if got, want := read(files[0], files[4]), "256\n100663296\n"; got != want {
			t.Fatalf("after update --resources: got %q, want %q", got, want)
		}
	})
}

func TestPauseResume(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *ociRuntime) {
		c := newContainer(t, rt)
		c.startSleeping()
		c.rt.mustRun(t, "pause", c.id)
		if s := c.status(); s != "paused" {
			t.Fatalf("status after pause: %s", s)
		}
		if stat := readFile("/proc/" + itoa(c.pid) + "/status"); isCgroupV1() && !strings.Contains(readFile(freezerPath(c)), "FROZEN") {
			t.Fatalf("freezer.state is %q; init: %s", readFile(freezerPath(c)), stat)
		}
		if r := c.exec(nil, "true"); r.code == 0 {
			t.Errorf("exec in a paused container succeeded")
		}
		c.rt.mustRun(t, "resume", c.id)
		if s := c.status(); s != "running" {
			t.Fatalf("status after resume: %s", s)
		}
		if r := c.exec(nil, "true"); r.code != 0 {
			t.Fatalf("exec after resume: %s", r)
		}
	})
}
