package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"
	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/cgroupdriver"
	"github.com/berth-cri/berth/test/framework"
)

// The systemd cgroup driver on cgroup v2: the node kubeadm sets up. These
// tests need systemd as PID 1 and the unified hierarchy, which this
// project's build machine lacks (cgroup v1 hybrid, no systemd): they run
// in the VM lane (test/vm, make vm-test) and skip elsewhere.

// requireSystemdV2 skips unless the node boots systemd with cgroup v2 only.
func requireSystemdV2(t *testing.T) {
	t.Helper()
	framework.RequireRoot(t)
	if fi, err := os.Stat("/run/systemd/system"); err != nil || !fi.IsDir() {
		t.Skip("the systemd cgroup driver needs systemd as PID 1 (no /run/systemd/system here); the VM lane (make vm-test) runs this")
	}
	if !cgroups.IsCgroup2UnifiedMode() {
		t.Skip("needs cgroup v2 only (this node mounts v1 controllers); the VM lane (make vm-test) runs this")
	}
}

func startSystemdEnv(t *testing.T) *ctrEnv {
	t.Helper()
	requireSystemdV2(t)
	return startContainerEnvOpts(t, framework.Options{CgroupDriver: "systemd"})
}

// unitState is systemctl's word for a unit: active, inactive, failed...
func unitState(t *testing.T, unit string) string {
	t.Helper()
	out, _ := exec.Command("systemctl", "is-active", unit).Output() // non-zero unless active
	return strings.TrimSpace(string(out))
}

func unitProperty(t *testing.T, unit, prop string) string {
	t.Helper()
	out, err := exec.Command("systemctl", "show", "--value", "-p", prop, unit).Output()
	if err != nil {
		t.Fatalf("systemctl show -p %s %s: %v", prop, unit, err)
	}
	return strings.TrimSpace(string(out))
}

// cgroupDirOf is where a spec's cgroupsPath is in the cgroup filesystem
// (relative to its root): the path itself, or for runc's systemd form
// slice:prefix:name the scope prefix-name.scope in the slice.
func cgroupDirOf(t testing.TB, cgroupsPath string) string {
	t.Helper()
	slice, rest, ok := strings.Cut(cgroupsPath, ":")
	if !ok {
		return cgroupsPath
	}
	prefix, name, _ := strings.Cut(rest, ":")
	dir, err := cgroupdriver.Path(slice)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, prefix+"-"+name+".scope")
}

func readCgroupFile(t testing.TB, dir, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", dir, file))
	if err != nil {
		t.Fatalf("read cgroup file: %v", err)
	}
	return strings.TrimSpace(string(b))
}

// A pod is a slice and its containers scopes in it, made through systemd;
// limits, updates and stats reach the scope's cgroup; removing the pod
// stops the slice Berth started. Every handler: berth-runner, runc, crun
// (given --systemd-cgroup and a slice:prefix:name cgroupsPath).
func TestSystemdCgroupDriver(t *testing.T) {
	e := startSystemdEnv(t)
	rc, err := e.d.Runtime.RuntimeConfig(e.d.Ctx(t), &runtimeapi.RuntimeConfigRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := rc.GetLinux().GetCgroupDriver(); got != runtimeapi.CgroupDriver_SYSTEMD {
		t.Errorf("RuntimeConfig cgroup driver = %v, want SYSTEMD", got)
	}
	forEachHandler(t, e.d, func(t *testing.T, handler string) {
		pod := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)
		slice := podStatus(t, e.d, pod).Info.CgroupParent
		wantPrefix := strings.TrimSuffix(e.d.CgroupParent, ".slice") + "-pod"
		if !strings.HasPrefix(slice, wantPrefix) || !strings.HasSuffix(slice, ".slice") {
			t.Fatalf("pod cgroup %q: want the slice %s<id>.slice", slice, wantPrefix)
		}
		if s := unitState(t, slice); s != "active" {
			t.Errorf("pod slice %s is %q, want active", slice, s)
		}

		cfg := e.config("limited", "sleep", "3600")
		cfg.Linux = &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{
			MemoryLimitInBytes: 64 << 20, CpuPeriod: 100000, CpuQuota: 50000, CpuShares: 512,
		}}
		ctr := e.run(t, pod, cfg)
		scope := "berth-" + ctr + ".scope"
		if got := e.info(t, ctr).RuntimeSpec.Linux.CgroupsPath; got != slice+":berth:"+ctr {
			t.Errorf("spec cgroupsPath = %q, want %s:berth:%s", got, slice, ctr)
		}
		if s := unitState(t, scope); s != "active" {
			t.Fatalf("container scope %s is %q, want active", scope, s)
		}
		if got := unitProperty(t, scope, "Slice"); got != slice {
			t.Errorf("scope %s is in slice %q, want %s", scope, got, slice)
		}
		dir, err := cgroupdriver.ContainerPath(slice, ctr)
		if err != nil {
			t.Fatal(err)
		}
		// The container's init is in the scope's cgroup.
		pid := e.info(t, ctr).Pid
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
		if err != nil || strings.TrimSpace(string(b)) != "0::"+dir {
			t.Errorf("container init %d cgroup = %q (%v), want 0::%s", pid, b, err, dir)
		}
		if got := readCgroupFile(t, dir, "memory.max"); got != strconv.Itoa(64<<20) {
			t.Errorf("memory.max = %s, want %d", got, 64<<20)
		}
		if got := readCgroupFile(t, dir, "cpu.max"); got != "50000 100000" {
			t.Errorf("cpu.max = %q", got)
		}

		_, err = e.d.Runtime.UpdateContainerResources(e.d.Ctx(t), &runtimeapi.UpdateContainerResourcesRequest{
			ContainerId: ctr,
			Linux:       &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 96 << 20, CpuPeriod: 100000, CpuQuota: 80000},
		})
		if err != nil {
			t.Fatalf("UpdateContainerResources: %v", err)
		}
		if got := readCgroupFile(t, dir, "memory.max"); got != strconv.Itoa(96<<20) {
			t.Errorf("after update: memory.max = %s, want %d", got, 96<<20)
		}
		if got := readCgroupFile(t, dir, "cpu.max"); got != "80000 100000" {
			t.Errorf("after update: cpu.max = %q", got)
		}

		// Stats read the scope's cgroup and the slice's.
		e.exec(t, ctr, 30, "sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done")
		cs := e.containerStats(t, ctr)
		if cs.GetCpu().GetUsageCoreNanoSeconds().GetValue() == 0 || cs.GetMemory().GetWorkingSetBytes().GetValue() == 0 {
			t.Errorf("container stats read nothing: cpu %v memory %v", cs.GetCpu(), cs.GetMemory())
		}
		if _, err := os.Stat("/proc/pressure/cpu"); err == nil && cs.GetCpu().GetPsi() == nil {
			t.Errorf("the kernel has PSI but the container's cpu stats have none: %v", cs.GetCpu())
		}
		ps, err := e.d.Runtime.PodSandboxStats(e.d.Ctx(t), &runtimeapi.PodSandboxStatsRequest{PodSandboxId: pod})
		if err != nil {
			t.Fatalf("PodSandboxStats: %v", err)
		}
		if ps.GetStats().GetLinux().GetCpu().GetUsageCoreNanoSeconds().GetValue() == 0 {
			t.Errorf("pod stats read no cpu: %v", ps.GetStats().GetLinux().GetCpu())
		}

		// Removing the pod removes the scope and stops the slice.
		if _, err := e.d.Runtime.StopPodSandbox(e.d.Ctx(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.d.Runtime.RemovePodSandbox(e.d.Ctx(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod}); err != nil {
			t.Fatal(err)
		}
		for _, u := range []string{scope, slice} {
			if s := unitState(t, u); s == "active" {
				t.Errorf("%s is still active after RemovePodSandbox", u)
			}
		}
		podDir, _ := cgroupdriver.Path(slice)
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", podDir)); err == nil {
			t.Errorf("pod cgroup %s is still there after RemovePodSandbox", podDir)
		}
	})
}

// kubelet makes its pod slices itself and names them in cgroup_parent:
// Berth puts the containers in it and leaves it to kubelet. A cgroupfs
// path is refused with the driver named.
func TestSystemdKubeletSlice(t *testing.T) {
	e := startSystemdEnv(t)
	handler := statsHandler(t)
	base := strings.TrimSuffix(e.d.CgroupParent, ".slice")
	kubeSlice := base + "-kubepods-besteffort-pod" + strconv.FormatInt(time.Now().UnixNano(), 36) + ".slice"
	cfg, err := cgroupdriver.Config(kubeSlice, nil)
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := manager.New(cfg) // as kubelet makes its pod slices
	if err != nil {
		t.Fatal(err)
	}
	if err := mgr.Apply(-1); err != nil {
		t.Fatalf("start kubelet's slice %s: %v", kubeSlice, err)
	}
	t.Cleanup(func() {
		// Stopping kubelet's top slice stops the ones systemd started
		// inside it for this one (kubepods-besteffort.slice...).
		mgr.Destroy()
		exec.Command("systemctl", "stop", base+"-kubepods.slice").Run()
	})

	pcfg := podConfig("kubeslice")
	pcfg.Linux.CgroupParent = kubeSlice
	resp, err := e.d.Runtime.RunPodSandbox(e.d.Ctx(t), &runtimeapi.RunPodSandboxRequest{Config: pcfg, RuntimeHandler: handler})
	if err != nil {
		t.Fatalf("RunPodSandbox in %s: %v", kubeSlice, err)
	}
	pod := resp.PodSandboxId
	e.podConfigs[pod] = pcfg
	ctr := e.run(t, pod, e.config("c", "sleep", "3600"))
	if got := unitProperty(t, "berth-"+ctr+".scope", "Slice"); got != kubeSlice {
		t.Errorf("scope is in %q, want kubelet's %s", got, kubeSlice)
	}
	if _, err := e.d.Runtime.StopPodSandbox(e.d.Ctx(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.d.Runtime.RemovePodSandbox(e.d.Ctx(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatal(err)
	}
	if s := unitState(t, kubeSlice); s != "active" {
		t.Errorf("kubelet's slice %s is %q after the pod's removal: Berth must leave it", kubeSlice, s)
	}

	bad := podConfig("cgroupfs-parent")
	bad.Linux.CgroupParent = "/kubepods/besteffort/podx"
	_, err = e.d.Runtime.RunPodSandbox(e.d.Ctx(t), &runtimeapi.RunPodSandboxRequest{Config: bad, RuntimeHandler: handler})
	wantCode(t, "cgroupfs cgroup_parent under the systemd driver", err, codes.InvalidArgument)
	if err != nil && !strings.Contains(err.Error(), "systemd") {
		t.Errorf("error %q does not name the driver", err)
	}
}

// OOM kills are read from the scope's memory.events; a pod resize sets
// the slice's limits.
func TestSystemdOOMAndPodResources(t *testing.T) {
	e := startSystemdEnv(t)
	forEachHandler(t, e.d, func(t *testing.T, handler string) {
		pod := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)
		oomCfg := e.config("oom", "sh", "-c", `a=xxxxxxxxxxxxxxxx; while true; do a=$a$a; done`)
		oomCfg.Linux = &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{
			MemoryLimitInBytes: 32 << 20, MemorySwapLimitInBytes: 32 << 20,
		}}
		oom := e.run(t, pod, oomCfg)
		if st := e.waitExit(t, oom); st.Reason != "OOMKilled" || st.ExitCode != 137 {
			t.Errorf("memory hog: exit %d reason %q, want 137 OOMKilled", st.ExitCode, st.Reason)
		}

		slice := podStatus(t, e.d, pod).Info.CgroupParent
		_, err := e.d.Runtime.UpdatePodSandboxResources(e.d.Ctx(t), &runtimeapi.UpdatePodSandboxResourcesRequest{
			PodSandboxId: pod,
			Resources:    &runtimeapi.LinuxContainerResources{CpuShares: 512, CpuPeriod: 100000, CpuQuota: 50000, MemoryLimitInBytes: 128 << 20},
			Overhead:     &runtimeapi.LinuxContainerResources{CpuShares: 100, CpuPeriod: 100000, CpuQuota: 10000, MemoryLimitInBytes: 16 << 20},
		})
		if err != nil {
			t.Fatalf("UpdatePodSandboxResources: %v", err)
		}
		dir, _ := cgroupdriver.Path(slice)
		if got := readCgroupFile(t, dir, "memory.max"); got != strconv.Itoa(144<<20) {
			t.Errorf("slice memory.max = %s, want %d", got, 144<<20)
		}
		if got := readCgroupFile(t, dir, "cpu.max"); got != "60000 100000" {
			t.Errorf("slice cpu.max = %q", got)
		}
		// systemd holds the limit as the slice's property, so a daemon
		// reload does not undo it.
		if got := unitProperty(t, slice, "MemoryMax"); got != strconv.Itoa(144<<20) {
			t.Errorf("slice MemoryMax = %q, want %d", got, 144<<20)
		}
	})
}

// With no driver configured berthd follows the node: systemd only where
// systemd is PID 1 and berthd runs in a unit of it (here, the test's),
// cgroupfs elsewhere; it says which and why in its log and RuntimeConfig.
func TestCgroupDriverFollowsNode(t *testing.T) {
	framework.RequireRoot(t)
	d := framework.StartDaemon(t, framework.Options{ConfigTOML: "[runtime]\ncgroup_driver = \"\"\ncgroup_parent = \"\"\n"})
	want, wantCRI := "cgroupfs", runtimeapi.CgroupDriver_CGROUPFS
	if fi, err := os.Stat("/run/systemd/system"); err == nil && fi.IsDir() && inSystemdUnit() {
		want, wantCRI = "systemd", runtimeapi.CgroupDriver_SYSTEMD
	}
	rc, err := d.Runtime.RuntimeConfig(d.Ctx(t), &runtimeapi.RuntimeConfigRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := rc.GetLinux().GetCgroupDriver(); got != wantCRI {
		t.Errorf("RuntimeConfig cgroup driver = %v, want %v", got, wantCRI)
	}
	if !strings.Contains(d.Log(), "cgroup driver "+want+" (") {
		t.Errorf("berthd's log does not say it chose %s and why:\n%s", want, d.Log())
	}
	st, err := d.Runtime.Status(d.Ctx(t), &runtimeapi.StatusRequest{Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(st.Info["cgroup"], `"driver":"`+want+`"`) {
		t.Errorf("Status info cgroup = %q, want driver %s", st.Info["cgroup"], want)
	}
	// berthctl info shows it in its table.
	out, err := exec.Command(filepath.Join(d.BinDir, "berthctl"), "-endpoint", d.Socket, "info").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "CgroupDriver") || !strings.Contains(string(out), want) {
		t.Errorf("berthctl info (%v) does not show the driver %s:\n%s", err, want, out)
	}
}

// inSystemdUnit: this process (and so the berthd it starts) runs in a
// systemd service, by its cgroup or systemd's INVOCATION_ID.
func inSystemdUnit() bool {
	if os.Getenv("INVOCATION_ID") != "" {
		return true
	}
	b, _ := os.ReadFile("/proc/self/cgroup")
	for _, l := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) == 3 && (parts[1] == "" || parts[1] == "name=systemd") && strings.HasSuffix(parts[2], ".service") {
			return true
		}
	}
	return false
}
