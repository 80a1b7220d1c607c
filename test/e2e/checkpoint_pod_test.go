package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/test/framework"
)

// podCounters are the names of the two counters of the checkpointed pod.
var podCounters = []string{"count-a", "count-b"}

// counterPod runs a pod of two counters and waits until both count.
func (e *ctrEnv) counterPod(t testing.TB, handler string) (pod string, ids, logs []string) {
	t.Helper()
	pod = e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)
	for _, name := range podCounters {
		id := e.run(t, pod, e.config(name, "sh", "-c", counterScript))
		ids = append(ids, id)
		logs = append(logs, e.status(t, id).LogPath)
	}
	for _, l := range logs {
		waitFor(t, func() bool { return lastCount(t, l) >= 3 })
	}
	return pod, ids, logs
}

// restorePodConfig is a new pod's config, as kubelet sends with a
// RestorePod: a new name, uid and log directory.
func restorePodConfig(t testing.TB) *runtimeapi.PodSandboxConfig {
	name := fmt.Sprintf("restored-%08x", rand.Uint32())
	return &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "e2e", Uid: "uid-" + name},
		Hostname:     name,
		LogDirectory: t.TempDir(),
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
		}},
	}
}

// counterConfigs are the restore-time configs of podCounters.
func (e *ctrEnv) counterConfigs() []*runtimeapi.ContainerConfig {
	var out []*runtimeapi.ContainerConfig
	for _, name := range podCounters {
		out = append(out, e.config(name, "sh", "-c", counterScript))
	}
	return out
}

// restorePod calls RestorePod and removes the pod it made when the test
// ends.
func (e *ctrEnv) restorePod(t testing.TB, req *runtimeapi.RestorePodRequest) (*runtimeapi.RestorePodResponse, error) {
	t.Helper()
	resp, err := e.d.Runtime.RestorePod(e.d.Ctx(t), req)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		ctx := context.Background()
		if _, err := e.d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: resp.PodSandboxId}); err != nil {
			t.Errorf("StopPodSandbox: %v", err)
		}
		if _, err := e.d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: resp.PodSandboxId}); err != nil {
			t.Errorf("RemovePodSandbox: %v", err)
		}
	})
	return resp, nil
}

// podCount is the number of pods berthd lists.
func (e *ctrEnv) podCount(t testing.TB) int {
	t.Helper()
	resp, err := e.d.Runtime.ListPodSandbox(e.d.Ctx(t), &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return len(resp.Items)
}

func TestCheckpointPodRestorePod(t *testing.T) {
	e := startCheckpointEnv(t)
	forEachHandler(t, e.d, func(t *testing.T, handler string) {
		pod, ids, logs := e.counterPod(t, handler)
		var pids []uint32
		for _, id := range ids {
			pids = append(pids, uint32(e.info(t, id).Pid))
		}

		dir := t.TempDir()
		started := time.Now()
		if _, err := e.d.Runtime.CheckpointPod(e.d.Ctx(t), &runtimeapi.CheckpointPodRequest{
			PodSandboxId: pod, OutputPath: dir, ContainerIds: ids}); err != nil {
			t.Fatalf("CheckpointPod: %v\nberthd log:\n%s", err, tail(e.d.Log(), 30))
		}
		t.Logf("%s: CheckpointPod of 2 counters: %v", handler, time.Since(started).Round(time.Millisecond))

		// Both keep running, the same processes, not frozen: they count
		// on and run commands.
		for i, id := range ids {
			if st := e.status(t, id); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
				t.Fatalf("%s after CheckpointPod: %v, want running", podCounters[i], st.State)
			}
			if pid := uint32(e.info(t, id).Pid); pid != pids[i] {
				t.Errorf("%s after CheckpointPod: pid %d, was %d", podCounters[i], pid, pids[i])
			}
			if r := e.exec(t, id, 10, "echo", "alive"); strings.TrimSpace(string(r.Stdout)) != "alive" {
				t.Errorf("exec in %s after CheckpointPod: %q", podCounters[i], r.Stdout)
			}
			at := lastCount(t, logs[i])
			waitFor(t, func() bool { return lastCount(t, logs[i]) >= at+3 })
		}

		// The directory: pod.json and one archive per container, each a
		// container checkpoint in CheckpointContainer's layout.
		ents, _ := os.ReadDir(dir)
		var got []string
		for _, en := range ents {
			got = append(got, en.Name())
		}
		if want := []string{"container-0.tar", "container-1.tar", "pod.json"}; !slices.Equal(got, want) {
			t.Fatalf("checkpoint directory holds %v, want %v", got, want)
		}
		saved := map[string]int{}
		for _, a := range got[:2] {
			files := readTar(t, filepath.Join(dir, a))
			var cfg struct{ Name string }
			if err := json.Unmarshal(files["config.dump"], &cfg); err != nil {
				t.Fatalf("%s: config.dump: %v", a, err)
			}
			if _, ok := files["checkpoint/inventory.img"]; !ok {
				t.Errorf("%s holds no CRIU images", a)
			}
			saved[cfg.Name] = countsIn(t, files["container.log"])
		}
		t.Logf("counts in the checkpoint: %v", saved)

		// Bad checkpoint requests: the right code, nothing written.
		empty := t.TempDir()
		other := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)
		stranger := e.run(t, other, e.config("stranger", "sleep", "1000"))
		for _, c := range []struct {
			name string
			req  *runtimeapi.CheckpointPodRequest
			code codes.Code
		}{
			{"non-empty directory", &runtimeapi.CheckpointPodRequest{PodSandboxId: pod, OutputPath: dir, ContainerIds: ids}, codes.InvalidArgument},
			{"relative directory", &runtimeapi.CheckpointPodRequest{PodSandboxId: pod, OutputPath: "rel", ContainerIds: ids}, codes.InvalidArgument},
			{"no containers", &runtimeapi.CheckpointPodRequest{PodSandboxId: pod, OutputPath: empty}, codes.InvalidArgument},
			{"a container twice", &runtimeapi.CheckpointPodRequest{PodSandboxId: pod, OutputPath: empty, ContainerIds: []string{ids[0], ids[0]}}, codes.InvalidArgument},
			{"unknown container", &runtimeapi.CheckpointPodRequest{PodSandboxId: pod, OutputPath: empty, ContainerIds: []string{ids[0], "feedface"}}, codes.NotFound},
			{"another pod's container", &runtimeapi.CheckpointPodRequest{PodSandboxId: pod, OutputPath: empty, ContainerIds: []string{ids[0], stranger}}, codes.InvalidArgument},
			{"unknown pod", &runtimeapi.CheckpointPodRequest{PodSandboxId: "feedface", OutputPath: empty, ContainerIds: ids}, codes.NotFound},
			{"an option", &runtimeapi.CheckpointPodRequest{PodSandboxId: pod, OutputPath: empty, ContainerIds: ids, Options: map[string]string{"x": "y"}}, codes.InvalidArgument},
		} {
			_, err := e.d.Runtime.CheckpointPod(e.d.Ctx(t), c.req)
			if status.Code(err) != c.code {
				t.Errorf("CheckpointPod with %s: %v, want %v", c.name, err, c.code)
			}
			if ents, _ := os.ReadDir(empty); len(ents) != 0 {
				t.Fatalf("CheckpointPod with %s wrote %d files", c.name, len(ents))
			}
		}
		for i, id := range ids {
			if r := e.exec(t, id, 10, "echo", "alive"); strings.TrimSpace(string(r.Stdout)) != "alive" {
				t.Errorf("exec in %s after the refused checkpoints: %q", podCounters[i], r.Stdout)
			}
		}

		// Bad restore requests: the right code, and nothing made.
		e.refusedRestores(t, handler, dir)

		// RestorePod: a new pod, its containers CREATED, not run.
		started = time.Now()
		resp, err := e.restorePod(t, &runtimeapi.RestorePodRequest{
			CheckpointPath: dir, Config: restorePodConfig(t), RuntimeHandler: handler, ContainerConfigs: e.counterConfigs()})
		if err != nil {
			t.Fatalf("RestorePod: %v\nberthd log:\n%s", err, tail(e.d.Log(), 30))
		}
		restoreTime := time.Since(started)
		if resp.PodSandboxId == "" || resp.PodSandboxId == pod || len(resp.RestoredContainers) != 2 {
			t.Fatalf("RestorePod: %v", resp)
		}
		for i, rc := range resp.RestoredContainers {
			if rc.Name != podCounters[i] || rc.ContainerId == "" || slices.Contains(ids, rc.ContainerId) {
				t.Errorf("restored container %d: %v", i, rc)
			}
			st := e.status(t, rc.ContainerId)
			if st.State != runtimeapi.ContainerState_CONTAINER_CREATED {
				t.Errorf("%s after RestorePod: %v, want created", rc.Name, st.State)
			}
			if pid := e.info(t, rc.ContainerId).Pid; pid != 0 {
				t.Errorf("%s after RestorePod has pid %d: it ran", rc.Name, pid)
			}
		}
		started = time.Now()
		for _, rc := range resp.RestoredContainers {
			e.start(t, rc.ContainerId)
		}
		t.Logf("%s: RestorePod %v, StartContainer of both %v", handler, restoreTime.Round(time.Millisecond), time.Since(started).Round(time.Millisecond))

		// The counts go on from the checkpoint's, in the new pod.
		for _, rc := range resp.RestoredContainers {
			st := e.status(t, rc.ContainerId)
			if st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
				t.Fatalf("%s after StartContainer: %v, want running", rc.Name, st.State)
			}
			waitFor(t, func() bool { return lastCount(t, st.LogPath) >= saved[rc.Name]+5 })
			counts := strings.Fields(logText(readLog(t, st.LogPath), "stdout"))
			for i, c := range counts {
				if n, _ := strconv.Atoi(c); i > 0 && n == 1 {
					t.Fatalf("%s counted from 1 again: %v", rc.Name, counts)
				}
			}
			if out := e.exec(t, rc.ContainerId, 10, "cat", "/added-by-counter"); strings.TrimSpace(string(out.Stdout)) != "kept" {
				t.Errorf("/added-by-counter in restored %s: %q", rc.Name, out.Stdout)
			}
		}
		// berthctl: checkpoint-pod of every running container, and
		// restore-pod from JSON configs, which starts them.
		e.viaBerthctl(t, handler, pod, saved)

		// The checkpoint's directory is only read.
		if after, _ := os.ReadDir(dir); len(after) != 3 {
			t.Errorf("RestorePod changed the checkpoint directory: %d entries", len(after))
		}
	})
}

// refusedRestores asks RestorePod of checkpoint dir what it must refuse,
// and checks that it made nothing.
func (e *ctrEnv) refusedRestores(t *testing.T, handler, dir string) {
	t.Helper()
	pods, before := e.podCount(t), e.nodeState(t)
	good := e.counterConfigs()
	extra := append(e.counterConfigs(), e.config("unknown", "sh", "-c", counterScript))
	mismatched := e.counterConfigs()
	mismatched[1].Command = []string{"sleep", "1000"}
	otherImage := e.counterConfigs()
	otherImage[0].Image = &runtimeapi.ImageSpec{Image: "example.invalid/other:1"}
	wrongEnv := e.counterConfigs()
	wrongEnv[0].Envs = []*runtimeapi.KeyValue{{Key: "NOT_THERE", Value: []byte("1")}}

	hostile := t.TempDir()
	man, err := os.ReadFile(filepath.Join(dir, "pod.json"))
	if err != nil {
		t.Fatal(err)
	}
	writeHostile := func(name string, edit func(m map[string]any), files map[string][]byte, links map[string]string) string {
		d := filepath.Join(hostile, name)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(man, &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		b, _ := json.Marshal(m)
		if err := os.WriteFile(filepath.Join(d, "pod.json"), b, 0o600); err != nil {
			t.Fatal(err)
		}
		for n, body := range files {
			if err := os.WriteFile(filepath.Join(d, n), body, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		for n, target := range links {
			if err := os.Symlink(target, filepath.Join(d, n)); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	archive0, _ := os.ReadFile(filepath.Join(dir, "container-0.tar"))
	archive1, _ := os.ReadFile(filepath.Join(dir, "container-1.tar"))
	setArchive := func(i int, name string) func(m map[string]any) {
		return func(m map[string]any) { m["containers"].([]any)[i].(map[string]any)["archive"] = name }
	}
	escape := writeHostile("escape", setArchive(0, "../../etc/passwd"), map[string][]byte{"container-1.tar": archive1}, nil)
	symlink := writeHostile("symlink", func(map[string]any) {}, map[string][]byte{"container-1.tar": archive1},
		map[string]string{"container-0.tar": filepath.Join(dir, "container-0.tar")})
	truncated := writeHostile("truncated", func(map[string]any) {},
		map[string][]byte{"container-0.tar": archive0[:len(archive0)/2], "container-1.tar": archive1}, nil)
	swapped := writeHostile("swapped", func(map[string]any) {},
		map[string][]byte{"container-0.tar": archive1, "container-1.tar": archive0}, nil)
	badVersion := writeHostile("version", func(m map[string]any) { m["version"] = 99 },
		map[string][]byte{"container-0.tar": archive0, "container-1.tar": archive1}, nil)
	// Refused only once the pod is made (a container with a terminal
	// cannot be restored): the pod goes too.
	withTty := e.counterConfigs()
	withTty[1].Tty = true
	hostNet := restorePodConfig(t)
	hostNet.Linux.SecurityContext.NamespaceOptions.Network = runtimeapi.NamespaceMode_NODE

	for _, c := range []struct {
		name string
		req  *runtimeapi.RestorePodRequest
		code codes.Code
	}{
		{"an unknown container name", &runtimeapi.RestorePodRequest{CheckpointPath: dir, Config: restorePodConfig(t), RuntimeHandler: handler, ContainerConfigs: extra}, codes.InvalidArgument},
		{"a container left out", &runtimeapi.RestorePodRequest{CheckpointPath: dir, Config: restorePodConfig(t), RuntimeHandler: handler, ContainerConfigs: good[:1]}, codes.InvalidArgument},
		{"a name twice", &runtimeapi.RestorePodRequest{CheckpointPath: dir, Config: restorePodConfig(t), RuntimeHandler: handler, ContainerConfigs: []*runtimeapi.ContainerConfig{good[0], good[0]}}, codes.InvalidArgument},
		{"another command", &runtimeapi.RestorePodRequest{CheckpointPath: dir, Config: restorePodConfig(t), RuntimeHandler: handler, ContainerConfigs: mismatched}, codes.InvalidArgument},
		{"another image", &runtimeapi.RestorePodRequest{CheckpointPath: dir, Config: restorePodConfig(t), RuntimeHandler: handler, ContainerConfigs: otherImage}, codes.InvalidArgument},
		{"an environment variable not there", &runtimeapi.RestorePodRequest{CheckpointPath: dir, Config: restorePodConfig(t), RuntimeHandler: handler, ContainerConfigs: wrongEnv}, codes.InvalidArgument},
		{"no container configs", &runtimeapi.RestorePodRequest{CheckpointPath: dir, Config: restorePodConfig(t), RuntimeHandler: handler}, codes.InvalidArgument},
		{"no pod config", &runtimeapi.RestorePodRequest{CheckpointPath: dir, RuntimeHandler: handler, ContainerConfigs: good}, codes.InvalidArgument},
		{"the host's network", &runtimeapi.RestorePodRequest{CheckpointPath: dir, Config: hostNet, RuntimeHandler: handler, ContainerConfigs: good}, codes.InvalidArgument},
		{"an option", &runtimeapi.RestorePodRequest{CheckpointPath: dir, Config: restorePodConfig(t), RuntimeHandler: handler, ContainerConfigs: good, Options: map[string]string{"x": "y"}}, codes.InvalidArgument},
		{"a terminal", &runtimeapi.RestorePodRequest{CheckpointPath: dir, Config: restorePodConfig(t), RuntimeHandler: handler, ContainerConfigs: withTty}, codes.InvalidArgument},
		{"an unknown handler", &runtimeapi.RestorePodRequest{CheckpointPath: dir, Config: restorePodConfig(t), RuntimeHandler: "nope", ContainerConfigs: good}, codes.InvalidArgument},
		{"a relative path", &runtimeapi.RestorePodRequest{CheckpointPath: "rel", Config: restorePodConfig(t), RuntimeHandler: handler, ContainerConfigs: good}, codes.InvalidArgument},
		{"a directory without pod.json", &runtimeapi.RestorePodRequest{CheckpointPath: t.TempDir(), Config: restorePodConfig(t), RuntimeHandler: handler, ContainerConfigs: good}, codes.InvalidArgument},
		{"an archive outside the directory", &runtimeapi.RestorePodRequest{CheckpointPath: escape, Config: restorePodConfig(t), RuntimeHandler: handler, ContainerConfigs: good}, codes.InvalidArgument},
		{"an archive that is a symlink", &runtimeapi.RestorePodRequest{CheckpointPath: symlink, Config: restorePodConfig(t), RuntimeHandler: handler, ContainerConfigs: good}, codes.InvalidArgument},
		{"a truncated archive", &runtimeapi.RestorePodRequest{CheckpointPath: truncated, Config: restorePodConfig(t), RuntimeHandler: handler, ContainerConfigs: good}, codes.InvalidArgument},
		{"archives swapped", &runtimeapi.RestorePodRequest{CheckpointPath: swapped, Config: restorePodConfig(t), RuntimeHandler: handler, ContainerConfigs: good}, codes.InvalidArgument},
		{"an unknown version", &runtimeapi.RestorePodRequest{CheckpointPath: badVersion, Config: restorePodConfig(t), RuntimeHandler: handler, ContainerConfigs: good}, codes.InvalidArgument},
	} {
		resp, err := e.d.Runtime.RestorePod(e.d.Ctx(t), c.req)
		if status.Code(err) != c.code {
			t.Errorf("RestorePod with %s: %v, want %v", c.name, err, c.code)
			if err == nil {
				e.d.Runtime.StopPodSandbox(context.Background(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: resp.PodSandboxId})
				e.d.Runtime.RemovePodSandbox(context.Background(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: resp.PodSandboxId})
			}
			continue
		}
		t.Logf("RestorePod with %s: %v", c.name, err)
		if n := e.podCount(t); n != pods {
			t.Errorf("RestorePod with %s left %d pods, were %d", c.name, n, pods)
		}
		if after := e.nodeState(t); !slices.Equal(after, before) {
			t.Errorf("RestorePod with %s changed the node:\nbefore %v\nafter  %v", c.name, before, after)
		}
	}
}

// loggedRuntime is a runtime handler "logged": berth-runner behind a
// script that appends each pause, resume and checkpoint it runs to a
// log, a checkpoint and a resume with the container's status as the
// runtime saw it then (a resume's "paused" says CRIU left the container
// frozen after its dump).
func loggedRuntime(t *testing.T) (toml, log string) {
	t.Helper()
	dir := t.TempDir()
	log = filepath.Join(dir, "calls")
	script := filepath.Join(dir, "runtime")
	runner := filepath.Join(framework.BinDir(t), "berth-runner")
	body := fmt.Sprintf(`#!/bin/sh
root=$2
for a; do id=$a; done
case " $* " in
*" checkpoint "*) echo "checkpoint $id $(%[1]q --root "$root" state "$id" | sed -n 's/.*"status": "\(.*\)".*/\1/p')" >> %[2]q ;;
*" pause "*) echo "pause $id" >> %[2]q ;;
*" resume "*) echo "resume $id $(%[1]q --root "$root" state "$id" | sed -n 's/.*"status": "\(.*\)".*/\1/p')" >> %[2]q ;;
esac
exec %[1]q "$@"
`, runner, log)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("[runtime.handlers.logged]\npath = %q\n", script), log
}

// Every container is paused before the first is dumped, each is dumped
// paused, and all are resumed after: on success and when CRIU refuses
// one of them (then nothing is left in the directory).
func TestCheckpointPodFreezesAllFirst(t *testing.T) {
	criu := criuBinary(t)
	toml, log := loggedRuntime(t)
	e := startContainerEnvWith(t, fmt.Sprintf("[runtime]\ncriu_path = %q\n", criu)+toml)
	pod, ids, logs := e.counterPod(t, "logged")
	calls := func() []string {
		b, _ := os.ReadFile(log)
		os.Remove(log)
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	calls()
	if _, err := e.d.Runtime.CheckpointPod(e.d.Ctx(t), &runtimeapi.CheckpointPodRequest{
		PodSandboxId: pod, OutputPath: t.TempDir(), ContainerIds: ids}); err != nil {
		t.Fatalf("CheckpointPod: %v\nberthd log:\n%s", err, tail(e.d.Log(), 30))
	}
	sorted := slices.Sorted(slices.Values(ids))
	want := []string{"pause " + sorted[0], "pause " + sorted[1],
		"checkpoint " + sorted[0] + " paused", "checkpoint " + sorted[1] + " paused",
		"resume " + sorted[0] + " paused", "resume " + sorted[1] + " paused"}
	got := calls()
	t.Logf("the runtime's calls for CheckpointPod:\n%s", strings.Join(got, "\n"))
	if !slices.Equal(got, want) {
		t.Errorf("the runtime's calls:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for i := range ids {
		at := lastCount(t, logs[i])
		waitFor(t, func() bool { return lastCount(t, logs[i]) >= at+3 })
	}

	// A container CRIU cannot dump (an open, deleted file of 4 MiB):
	// the checkpoint fails, and every container runs on.
	ghost := e.run(t, pod, e.config("ghost", "sh", "-c",
		`dd if=/dev/zero of=/big bs=1M count=4 2>/dev/null; exec 3</big; rm /big; echo ready; while :; do sleep 0.1; done`))
	e.waitLog(t, ghost, "ready")
	calls()
	dir := t.TempDir()
	_, err := e.d.Runtime.CheckpointPod(e.d.Ctx(t), &runtimeapi.CheckpointPodRequest{
		PodSandboxId: pod, OutputPath: dir, ContainerIds: append(slices.Clone(ids), ghost)})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "CRIU cannot dump it") {
		t.Fatalf("CheckpointPod with a container CRIU refuses: %v, want FailedPrecondition", err)
	}
	t.Logf("refused: %v", err)
	got = calls()
	t.Logf("the runtime's calls for the refused CheckpointPod:\n%s", strings.Join(got, "\n"))
	for _, id := range append(slices.Clone(ids), ghost) {
		if !slices.Contains(got, "pause "+id) || !slices.Contains(got, "resume "+id+" paused") {
			t.Errorf("container %s was not paused and resumed: %v", id, got)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("a failed CheckpointPod left %d files", len(ents))
	}
	for i, id := range ids {
		if r := e.exec(t, id, 10, "echo", "alive"); strings.TrimSpace(string(r.Stdout)) != "alive" {
			t.Errorf("exec in %s after a failed CheckpointPod: %q", podCounters[i], r.Stdout)
		}
		at := lastCount(t, logs[i])
		waitFor(t, func() bool { return lastCount(t, logs[i]) >= at+3 })
	}
}

// SIGKILL of berthd while CRIU dumps a paused pod: the restarted berthd
// resumes every container, removes the half-made checkpoint and leaves
// the output directory empty.
func TestCheckpointPodDaemonKilled(t *testing.T) {
	e, pod, ids, logs := startBigAndSmall(t)
	dir := t.TempDir()
	stages := filepath.Join(e.d.Root, "checkpoints")
	done := make(chan error, 1)
	go func() {
		_, err := e.d.Runtime.CheckpointPod(e.d.Ctx(t), &runtimeapi.CheckpointPodRequest{
			PodSandboxId: pod, OutputPath: dir, ContainerIds: ids})
		done <- err
	}()
	waitFor(t, func() bool {
		m, _ := filepath.Glob(filepath.Join(stages, "pod-*", "*", "checkpoint", "*"))
		return len(m) > 0
	})
	e.d.Kill(t)
	if err := <-done; err == nil {
		t.Fatal("CheckpointPod succeeded although berthd was killed during the dump")
	}
	e.d.Restart(t)
	for i, id := range ids {
		if st := e.status(t, id); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Fatalf("after berthd's restart: %v, want running", st.State)
		}
		// Counting first: an exec into a frozen container would hang.
		at := lastCount(t, logs[i])
		waitFor(t, func() bool { return lastCount(t, logs[i]) >= at+3 })
		if r := e.exec(t, id, 10, "echo", "alive"); strings.TrimSpace(string(r.Stdout)) != "alive" {
			t.Errorf("exec after berthd's restart: %q", r.Stdout)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("the killed checkpoint left %d files in the output directory", len(ents))
	}
	if ents, _ := os.ReadDir(stages); len(ents) != 0 {
		t.Errorf("the restarted berthd left %d checkpoint stages", len(ents))
	}
}

// viaBerthctl checkpoints pod's running containers with berthctl
// checkpoint-pod and restores them with restore-pod, which starts them:
// they count on from at least saved's counts.
func (e *ctrEnv) viaBerthctl(t *testing.T, handler, pod string, saved map[string]int) {
	t.Helper()
	berthctl := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(filepath.Join(e.d.BinDir, "berthctl"), append([]string{"--endpoint", e.d.Socket}, args...)...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("berthctl %v: %v\n%s%s", args, err, out, stderr.String())
		}
		return out
	}
	dir := filepath.Join(t.TempDir(), "ckpt")
	berthctl("checkpoint-pod", "-o", dir, pod)
	if _, err := os.Stat(filepath.Join(dir, "pod.json")); err != nil {
		t.Fatalf("berthctl checkpoint-pod wrote no pod.json: %v", err)
	}
	cfgDir := t.TempDir()
	write := func(name string, m proto.Message) string {
		b, err := protojson.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(cfgDir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	args := []string{"-o", "json", "restore-pod", "-r", handler, dir, write("pod.json", restorePodConfig(t))}
	for _, cfg := range e.counterConfigs() {
		args = append(args, write(cfg.Metadata.Name+".json", cfg))
	}
	var resp runtimeapi.RestorePodResponse
	if err := protojson.Unmarshal(berthctl(args...), &resp); err != nil || len(resp.RestoredContainers) != 2 {
		t.Fatalf("berthctl restore-pod printed %v (%v)", &resp, err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		e.d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: resp.PodSandboxId})
		if _, err := e.d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: resp.PodSandboxId}); err != nil {
			t.Errorf("RemovePodSandbox: %v", err)
		}
	})
	for _, rc := range resp.RestoredContainers {
		st := e.status(t, rc.ContainerId)
		if st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Fatalf("%s restored by berthctl: %v, want running", rc.Name, st.State)
		}
		waitFor(t, func() bool { return lastCount(t, st.LogPath) >= saved[rc.Name]+5 })
	}
}

// BenchmarkCheckpointPod: CheckpointPod of a running pod of two small
// counters into a new directory on the test's disk; they keep running.
func BenchmarkCheckpointPod(b *testing.B) {
	e := startCheckpointEnv(b)
	pod, ids, _ := e.counterPod(b, handlerNames(b)[0])
	parent := b.TempDir()
	n := 0
	for b.Loop() {
		n++
		dir := filepath.Join(parent, strconv.Itoa(n))
		if err := os.Mkdir(dir, 0o700); err != nil {
			b.Fatal(err)
		}
		if _, err := e.d.Runtime.CheckpointPod(e.d.Ctx(b), &runtimeapi.CheckpointPodRequest{
			PodSandboxId: pod, OutputPath: dir, ContainerIds: ids}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRestorePod: RestorePod of that pod's checkpoint into a new pod
// and StartContainer of both containers (the pod's removal is not
// timed).
func BenchmarkRestorePod(b *testing.B) {
	e := startCheckpointEnv(b)
	handler := handlerNames(b)[0]
	pod, ids, _ := e.counterPod(b, handler)
	dir := b.TempDir()
	if _, err := e.d.Runtime.CheckpointPod(e.d.Ctx(b), &runtimeapi.CheckpointPodRequest{
		PodSandboxId: pod, OutputPath: dir, ContainerIds: ids}); err != nil {
		b.Fatal(err)
	}
	// The checkpointed pod goes, as after a migration: its containers'
	// pids are free for the restored ones.
	ctx := e.d.Ctx(b)
	if _, err := e.d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		resp, err := e.d.Runtime.RestorePod(ctx, &runtimeapi.RestorePodRequest{
			CheckpointPath: dir, Config: restorePodConfig(b), RuntimeHandler: handler, ContainerConfigs: e.counterConfigs()})
		if err != nil {
			b.Fatal(err)
		}
		for _, rc := range resp.RestoredContainers {
			if _, err := e.d.Runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: rc.ContainerId}); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if _, err := e.d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: resp.PodSandboxId}); err != nil {
			b.Fatal(err)
		}
		if _, err := e.d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: resp.PodSandboxId}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// CheckpointPod whose deadline passes at different points (pausing,
// dumping the 100 MB container, writing): every container runs on after
// each, and a checkpoint cut short leaves the directory empty.
func TestCheckpointPodDeadline(t *testing.T) {
	e, pod, ids, logs := startBigAndSmall(t)
	for _, d := range []time.Duration{20 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second} {
		dir := t.TempDir()
		ctx, cancel := context.WithTimeout(context.Background(), d)
		_, err := e.d.Runtime.CheckpointPod(ctx, &runtimeapi.CheckpointPodRequest{PodSandboxId: pod, OutputPath: dir, ContainerIds: ids})
		cancel()
		t.Logf("deadline %v: %v", d, err)
		if err != nil && status.Code(err) != codes.DeadlineExceeded {
			t.Errorf("deadline %v: %v, want DeadlineExceeded or success", d, err)
		}
		for i := range ids {
			at := lastCount(t, logs[i])
			waitFor(t, func() bool { return lastCount(t, logs[i]) >= at+3 })
		}
		if err != nil {
			// berthd answers the deadline as it passes and cleans up
			// after: wait for that.
			waitFor(t, func() bool { ents, _ := os.ReadDir(dir); return len(ents) == 0 })
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(e.d.Root, "checkpoints")); len(ents) != 0 {
		t.Errorf("%d checkpoint stages left", len(ents))
	}
	t.Logf("dumps cut short that berthd waited for before resuming: %d", strings.Count(e.d.Log(), "stop tracing the container"))
}

// berthctl restore: a container from an archive into a pod, started.
func TestBerthctlRestore(t *testing.T) {
	e := startCheckpointEnv(t)
	handler := handlerNames(t)[0]
	archive, saved := e.checkpointCounter(t, handler)
	pod := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)
	b, err := protojson.Marshal(e.config("counter", "sh", "-c", counterScript))
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "ctr.json")
	if err := os.WriteFile(cfg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(e.d.BinDir, "berthctl"), "--endpoint", e.d.Socket, "-o", "json", "restore", archive, pod, cfg)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("berthctl restore: %v\n%s", err, stderr.String())
	}
	var resp runtimeapi.CreateContainerResponse
	if err := protojson.Unmarshal(out, &resp); err != nil || resp.ContainerId == "" {
		t.Fatalf("berthctl restore printed %q (%v)", out, err)
	}
	st := e.status(t, resp.ContainerId)
	if st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("after berthctl restore: %v, want running", st.State)
	}
	waitFor(t, func() bool { return lastCount(t, st.LogPath) >= saved+5 })
}

// startBigAndSmall runs a pod with a counter holding 100 MB ("big") and a
// small one, and waits until the big one holds its memory; it returns
// their ids and log paths in that order.
func startBigAndSmall(t *testing.T) (e *ctrEnv, pod string, ids, logs []string) {
	t.Helper()
	e = startCheckpointEnv(t)
	pod = e.pod(t, handlerNames(t)[0], runtimeapi.NamespaceMode_CONTAINER)
	big := e.run(t, pod, e.config("big", "sh", "-c", bigCounter))
	small := e.run(t, pod, e.config("small", "sh", "-c", counterScript))
	ids = []string{big, small}
	logs = []string{e.status(t, big).LogPath, e.status(t, small).LogPath}
	bigFilled(t, logs[0])
	return e, pod, ids, logs
}
