package e2e

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/test/framework"
)

// upgradedBinaries are what a package upgrade replaces.
var upgradedBinaries = []string{"berthd", "berth-monitor", "berth-runner", "berth-pause"}

// A node upgraded in place keeps its running pods: a berthd from before
// record versions (make upgrade-from: commit 485c30a's make build into
// build/cache; or BERTH_TEST_OLD_BINDIR)
// runs a pod with an infra and containers (one running with resources,
// one exited, one created), stops; its binaries are replaced in place as
// a package upgrade replaces them (the monitors keep running the old,
// now deleted, file); this tree's berthd starts on the same root. Every
// pod and container is as it was, their records are migrated to the
// current version, and they are still managed: exec, update, start,
// stop, remove, with nothing left behind.
func TestUpgradeInPlaceKeepsRunningPods(t *testing.T) {
	old := cachedTool(t, "old_bindir", "upgrade-*/bin")
	if old == "" {
		t.Skip("no older build: run `make upgrade-from` (or set BERTH_TEST_OLD_BINDIR to make build's bin/ of commit 485c30a)")
	}
	framework.RequireRoot(t)
	bin := t.TempDir()
	install(t, old, bin)
	e := startContainerEnvOpts(t, framework.Options{BinDir: bin})
	handler := handlerNames(t)[0]

	pod := e.pod(t, handler, runtimeapi.NamespaceMode_POD)
	withResources := e.config("running", "sh", "-c", "echo before; sleep 3600")
	withResources.Linux = &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{
		CpuPeriod: 100000, CpuQuota: 50000, CpuShares: 512, MemoryLimitInBytes: 64 << 20, OomScoreAdj: 100,
	}}
	running := e.run(t, pod, withResources)
	exited := e.run(t, pod, e.config("exited", "sh", "-c", "exit 7"))
	created := e.create(t, pod, e.config("created", "sh", "-c", "echo late; sleep 3600"))
	waitFor(t, func() bool {
		return e.status(t, exited).State == runtimeapi.ContainerState_CONTAINER_EXITED
	})
	before := map[string]*runtimeapi.ContainerStatus{}
	for _, id := range []string{running, exited, created} {
		before[id] = e.status(t, id)
	}
	info := e.info(t, running)
	infraPID := podStatus(t, e.d, pod).Info.InfraPID

	if err := e.d.Stop(t); err != nil {
		t.Fatalf("stop the old berthd: %v", err)
	}
	if v := recordVersion(t, e.d.Root, running); v != nil {
		t.Fatalf("the old berthd wrote container records with version %v: not the format this test upgrades from", *v)
	}
	install(t, framework.BinDir(t), bin)
	e.d.Restart(t)

	if st := podStatus(t, e.d, pod); st.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY || st.Info.InfraPID != infraPID {
		t.Fatalf("pod after the upgrade: %v, infra %d (was %d)", st.Status.State, st.Info.InfraPID, infraPID)
	}
	for id, was := range before {
		st := e.status(t, id)
		if st.State != was.State || st.ExitCode != was.ExitCode || st.StartedAt != was.StartedAt ||
			st.FinishedAt != was.FinishedAt || st.Reason != was.Reason || st.LogPath != was.LogPath ||
			!proto.Equal(st.Resources, was.Resources) {
			t.Errorf("container %s after the upgrade:\n%v\nwas\n%v", was.Metadata.Name, st, was)
		}
		if v := recordVersion(t, e.d.Root, id); v == nil || *v != 1 {
			t.Errorf("container %s's record was not migrated: version %v", was.Metadata.Name, v)
		}
	}
	if got := e.info(t, running); got.Pid != info.Pid || got.MonitorPid != info.MonitorPid {
		t.Errorf("running container's pid %d, monitor %d after the upgrade; were %d, %d", got.Pid, got.MonitorPid, info.Pid, info.MonitorPid)
	}
	if r := e.exec(t, running, 0, "echo", "still here"); string(r.Stdout) != "still here\n" {
		t.Errorf("exec after the upgrade: %q", r.Stdout)
	}
	res := proto.Clone(withResources.Linux.Resources).(*runtimeapi.LinuxContainerResources)
	res.CpuShares = 256
	if _, err := e.d.Runtime.UpdateContainerResources(e.d.Ctx(t), &runtimeapi.UpdateContainerResourcesRequest{
		ContainerId: running, Linux: res}); err != nil {
		t.Errorf("UpdateContainerResources after the upgrade: %v", err)
	} else if got := e.status(t, running).GetResources().GetLinux().GetCpuShares(); got != 256 {
		t.Errorf("cpu shares after the update: %d, want 256", got)
	}
	e.start(t, created)
	e.stop(t, running, 0)
	if st := e.status(t, running); st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 137 {
		t.Errorf("stop after the upgrade: %v exit %d", st.State, st.ExitCode)
	}
	if text := logText(readLog(t, e.status(t, running).LogPath), "stdout"); text != "before\n" {
		t.Errorf("log across the upgrade: %q", text)
	}
	// The pod's and containers' cleanups stop and remove them through
	// the new berthd; the framework then fails the test on anything left.
}

// install copies the upgraded binaries from src into dst, each through a
// new file renamed over the old, as a package manager does: a running
// program keeps its (deleted) file.
func install(t *testing.T, src, dst string) {
	t.Helper()
	for _, name := range upgradedBinaries {
		in, err := os.Open(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(dst, "."+name+".new")
		out, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
		if err == nil {
			_, err = io.Copy(out, in)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
		}
		in.Close()
		if err == nil {
			err = os.Rename(tmp, filepath.Join(dst, name))
		}
		if err != nil {
			t.Fatalf("install %s: %v", name, err)
		}
	}
}

// recordVersion is the version key of a container's record, nil if it
// has none.
func recordVersion(t *testing.T, root, id string) *int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "containers", id, "container.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r.Version
}
