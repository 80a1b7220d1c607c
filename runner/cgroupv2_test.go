package runner

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fs2"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// The host this runtime is developed on runs cgroup v1, so the v2 paths are
// checked here against a fake cgroup2 directory: cgroups.TestMode makes the
// fs2 manager create the files it writes. What is checked is the whole
// chain berth-runner uses on a v2 host: spec -> specconv -> fs2 manager ->
// files, for create and for update.

// fakeCgroup2 returns an fs2 manager on a fake cgroup2 directory with every
// controller enabled.
func fakeCgroup2(t *testing.T, cg *cgroups.Cgroup) (*fs2.Manager, string) {
	t.Helper()
	cgroups.TestMode = true
	t.Cleanup(func() { cgroups.TestMode = false })
	dir := t.TempDir()
	write(t, dir, "cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n")
	write(t, dir, "cgroup.events", "populated 1\nfrozen 0\n")
	write(t, dir, "cgroup.freeze", "0\n")
	cg.Resources.SkipDevices = true // eBPF device filters need a real cgroup2
	m, err := fs2.NewManager(cg, dir)
	if err != nil {
		t.Fatal(err)
	}
	return m, dir
}

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func checkFiles(t *testing.T, dir string, want map[string]string) {
	t.Helper()
	for name, w := range want {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got := strings.TrimSpace(string(b)); got != w {
			t.Errorf("%s = %q, want %q", name, got, w)
		}
	}
}

func specWithResources(r *specs.LinuxResources) *specs.Spec {
	return &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: "/nonexistent-rootfs"},
		Process: &specs.Process{Args: []string{"true"}, Cwd: "/"},
		Linux: &specs.Linux{
			CgroupsPath: "/berth-test/c1",
			Resources:   r,
			Namespaces:  []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}},
		},
	}
}

func ptrTo[T any](v T) *T { return &v }

func TestCgroupV2FromSpec(t *testing.T) {
	weight := uint16(500)
	spec := specWithResources(&specs.LinuxResources{
		CPU: &specs.LinuxCPU{
			Shares: ptrTo[uint64](1024), Quota: ptrTo[int64](50000), Period: ptrTo[uint64](100000),
			Cpus: "0-1", Mems: "0",
		},
		Memory: &specs.LinuxMemory{
			Limit: ptrTo[int64](256 << 20), Reservation: ptrTo[int64](128 << 20), Swap: ptrTo[int64](512 << 20),
		},
		Pids:    &specs.LinuxPids{Limit: ptrTo[int64](100)},
		BlockIO: &specs.LinuxBlockIO{Weight: &weight},
		Unified: map[string]string{"memory.high": "200000000", "cpu.idle": "0"},
	})
	config, err := containerConfig("c1", spec, configOpts{})
	if err != nil {
		t.Fatal(err)
	}
	m, dir := fakeCgroup2(t, config.Cgroups)
	if err := m.Set(config.Cgroups.Resources); err != nil {
		t.Fatal(err)
	}
	checkFiles(t, dir, map[string]string{
		// shares 1024 -> weight (the v1->v2 conversion)
		"cpu.weight":  itoa(cgroups.ConvertCPUSharesToCgroupV2Value(1024)),
		"cpu.max":     "50000 100000",
		"cpuset.cpus": "0-1",
		"cpuset.mems": "0",
		"memory.max":  "268435456",
		"memory.low":  "134217728",
		// v1's swap is memory+swap; v2's memory.swap.max is swap alone
		"memory.swap.max": "268435456",
		"pids.max":        "100",
		"memory.high":     "200000000",
		"cpu.idle":        "0",
	})
	if b, _ := os.ReadFile(filepath.Join(dir, "io.weight")); !strings.Contains(string(b), itoa(cgroups.ConvertBlkIOToIOWeightValue(500))) {
		t.Errorf("io.weight = %q, want blkio weight 500 converted", b)
	}
}

func TestCgroupV2UnlimitedValues(t *testing.T) {
	spec := specWithResources(&specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: ptrTo[int64](-1), Swap: ptrTo[int64](-1)},
		Pids:   &specs.LinuxPids{Limit: ptrTo[int64](-1)},
		CPU:    &specs.LinuxCPU{Quota: ptrTo[int64](-1), Period: ptrTo[uint64](100000)},
	})
	config, err := containerConfig("c1", spec, configOpts{})
	if err != nil {
		t.Fatal(err)
	}
	m, dir := fakeCgroup2(t, config.Cgroups)
	if err := m.Set(config.Cgroups.Resources); err != nil {
		t.Fatal(err)
	}
	checkFiles(t, dir, map[string]string{
		"memory.max": "max", "memory.swap.max": "max", "pids.max": "max", "cpu.max": "max 100000",
	})
}

func TestCgroupV2UnifiedRejectsPaths(t *testing.T) {
	spec := specWithResources(&specs.LinuxResources{Unified: map[string]string{"../escape": "1"}})
	config, err := containerConfig("c1", spec, configOpts{})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := fakeCgroup2(t, config.Cgroups)
	if err := m.Set(config.Cgroups.Resources); err == nil {
		t.Fatal("a unified key with a slash was accepted")
	}
}

// TestCgroupV2Update runs `update`'s flag parsing and merge, then the fs2
// manager, as `berth-runner update` does on a v2 host.
func TestCgroupV2Update(t *testing.T) {
	spec := specWithResources(&specs.LinuxResources{
		CPU:    &specs.LinuxCPU{Quota: ptrTo[int64](50000), Period: ptrTo[uint64](100000)},
		Memory: &specs.LinuxMemory{Limit: ptrTo[int64](256 << 20)},
	})
	config, err := containerConfig("c1", spec, configOpts{})
	if err != nil {
		t.Fatal(err)
	}
	fs := newFlagSet(false, updateCommand.flags...)
	if err := fs.parse([]string{"--memory", "128M", "--cpu-quota", "20000", "--cpu-share", "512", "--pids-limit", "50", "c1"}); err != nil {
		t.Fatal(err)
	}
	r, err := updateRequest(fs, nil)
	if err != nil {
		t.Fatal(err)
	}
	applyUpdate(config, r)
	m, dir := fakeCgroup2(t, config.Cgroups)
	if err := m.Set(config.Cgroups.Resources); err != nil {
		t.Fatal(err)
	}
	checkFiles(t, dir, map[string]string{
		"memory.max": "134217728",
		"cpu.max":    "20000 100000", // quota alone keeps the period
		"cpu.weight": itoa(cgroups.ConvertCPUSharesToCgroupV2Value(512)),
		"pids.max":   "50",
	})

	// --resources - with unified keys
	fs = newFlagSet(false, updateCommand.flags...)
	if err := fs.parse([]string{"--resources", "-", "c1"}); err != nil {
		t.Fatal(err)
	}
	r, err = updateRequest(fs, strings.NewReader(`{"unified": {"memory.high": "100000000"}, "memory": {"limit": -1}}`))
	if err != nil {
		t.Fatal(err)
	}
	applyUpdate(config, r)
	if err := m.Set(config.Cgroups.Resources); err != nil {
		t.Fatal(err)
	}
	checkFiles(t, dir, map[string]string{"memory.high": "100000000", "memory.max": "max"})
}

func TestCgroupV2Freezer(t *testing.T) {
	config := &configs.Config{Cgroups: &cgroups.Cgroup{Resources: &cgroups.Resources{}}}
	m, dir := fakeCgroup2(t, config.Cgroups)
	// the kernel would flip "frozen" in cgroup.events; the fake one says so
	write(t, dir, "cgroup.events", "populated 1\nfrozen 1\n")
	if err := m.Freeze(cgroups.Frozen); err != nil {
		t.Fatal(err)
	}
	checkFiles(t, dir, map[string]string{"cgroup.freeze": "1"})
	if st, err := m.GetFreezerState(); err != nil || st != cgroups.Frozen {
		t.Fatalf("freezer state %q, %v", st, err)
	}
	write(t, dir, "cgroup.events", "populated 1\nfrozen 0\n")
	if err := m.Freeze(cgroups.Thawed); err != nil {
		t.Fatal(err)
	}
	checkFiles(t, dir, map[string]string{"cgroup.freeze": "0"})
}

func itoa[T ~uint64 | ~uint16 | ~int](v T) string { return strconv.FormatUint(uint64(v), 10) }
