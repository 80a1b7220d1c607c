package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A root container of a pod with a shared PID namespace can kill the
// pod's infra (PID 1 of that namespace). The pod then is NOTREADY, no
// container can be created in it, and a host process that took the
// infra's old pid does not lend a new container its PID namespace.
func TestInfraDeathMakesPodNotReady(t *testing.T) {
	e := startContainerEnv(t)
	forEachHandler(t, e.d, func(t *testing.T, handler string) {
		pod := e.pod(t, handler, runtimeapi.NamespaceMode_POD)
		st := podStatus(t, e.d, pod)
		infraPID := st.Info.InfraPID
		if infraPID <= 0 {
			t.Fatal("pod with a shared PID namespace has no infra pid")
		}
		if p := st.Info.Namespaces["pid"]; !strings.HasPrefix(p, e.d.RunRoot+"/") {
			t.Errorf("pod's PID namespace is %q, want a pin under the run root %s", p, e.d.RunRoot)
		}
		cfg := e.config("killer", "sleep", "3600")
		cfg.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_POD}}}
		ctr := e.run(t, pod, cfg)

		// The exec dies with the namespace: its answer does not matter.
		e.d.Runtime.ExecSync(e.d.Ctx(t), &runtimeapi.ExecSyncRequest{ContainerId: ctr, Cmd: []string{"kill", "-TERM", "1"}, Timeout: 10})
		notReady := func() bool {
			return podStatus(t, e.d, pod).Status.State == runtimeapi.PodSandboxState_SANDBOX_NOTREADY
		}
		for end := time.Now().Add(time.Minute); !notReady() && time.Now().Before(end); {
			time.Sleep(50 * time.Millisecond)
		}
		if !notReady() {
			t.Error("pod still READY a minute after its infra was killed")
		}

		// A host process takes the dead infra's pid.
		if host := takePID(t, infraPID); host == 0 {
			t.Logf("could not hand pid %d to a host process (the machine is busy); checking the create alone", infraPID)
		}
		late := e.config("late", "sleep", "3600")
		late.Linux = cfg.Linux
		id, err := e.tryCreate(t, pod, late)
		wantCode(t, "CreateContainer in a pod whose infra died", err, codes.FailedPrecondition)
		if err == nil {
			if _, err := e.d.Runtime.StartContainer(e.d.Ctx(t), &runtimeapi.StartContainerRequest{ContainerId: id}); err == nil {
				hostNS, _ := os.Readlink("/proc/self/ns/pid")
				if ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", e.info(t, id).Pid)); ns == hostNS {
					t.Errorf("the new container runs in the host's PID namespace %s", ns)
				}
			}
		}
		list, lerr := e.d.Runtime.ListContainers(e.d.Ctx(t), &runtimeapi.ListContainersRequest{
			Filter: &runtimeapi.ContainerFilter{PodSandboxId: pod}})
		if lerr != nil {
			t.Fatal(lerr)
		}
		for _, c := range list.Containers {
			if c.Metadata.Name == "late" {
				t.Errorf("a container %s was made in the NOTREADY pod", c.Id)
			}
		}
	})
}

// takePID starts a host process with pid, by setting ns_last_pid just
// below it (a few tries: other processes of the machine race for pids).
// It returns the pid, or 0 if another process kept winning.
func takePID(t *testing.T, pid int) int {
	t.Helper()
	const lastPID = "/proc/sys/kernel/ns_last_pid"
	for range 50 {
		if err := os.WriteFile(lastPID, []byte(strconv.Itoa(pid-1)), 0o644); err != nil {
			t.Fatalf("set %s: %v", lastPID, err)
		}
		cmd := exec.Command("sleep", "600")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if cmd.Process.Pid == pid {
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			return pid
		}
		cmd.Process.Kill()
		cmd.Wait()
	}
	return 0
}

// StopPodSandbox stops the pod's containers within the caller's deadline,
// as `crictl rmp -f` (2 s) needs, even when a container ignores SIGTERM
// and the default grace period is longer than the deadline.
func TestStopPodSandboxHonoursDeadline(t *testing.T) {
	e := startContainerEnv(t)
	handler := handlerNames(t)
	if len(handler) == 0 {
		t.Skip("no runtime handler")
	}
	pod := e.pod(t, handler[0], runtimeapi.NamespaceMode_CONTAINER)
	var ids []string
	for i := range 2 {
		cfg := e.config(fmt.Sprintf("stubborn%d", i), "sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done")
		id := e.run(t, pod, cfg)
		e.waitLog(t, id, "ready")
		ids = append(ids, id)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := e.d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatalf("StopPodSandbox with crictl's 2 s deadline and a 10 s default grace: %v", err)
	}
	for _, id := range ids {
		if s := e.status(t, id); s.State != runtimeapi.ContainerState_CONTAINER_EXITED {
			t.Errorf("container %s is %v after StopPodSandbox", id, s.State)
		}
	}
	if s := podStatus(t, e.d, pod).Status.State; s != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Errorf("pod is %v after StopPodSandbox", s)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel2()
	if _, err := e.d.Runtime.RemovePodSandbox(ctx2, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatalf("RemovePodSandbox: %v", err)
	}
}

// Pod names are compared whole: a name, namespace or uid may contain the
// separator a joined key would use, and two different pods must not
// share a key. A call with the same name but another config is no retry.
func TestRunPodSandboxNamesAreUnambiguous(t *testing.T) {
	e := startContainerEnv(t)
	run := func(name, ns, hostname string) (string, error) {
		cfg := &runtimeapi.PodSandboxConfig{
			Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: ns, Uid: "u_1"},
			Hostname: hostname,
		}
		resp, err := e.d.Runtime.RunPodSandbox(e.d.Ctx(t), &runtimeapi.RunPodSandboxRequest{Config: cfg})
		if err != nil {
			return "", err
		}
		id := resp.PodSandboxId
		t.Cleanup(func() {
			e.d.Runtime.StopPodSandbox(context.Background(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: id})
			e.d.Runtime.RemovePodSandbox(context.Background(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id})
		})
		return id, nil
	}
	a, err := run("a_b", "c", "one")
	if err != nil {
		t.Fatal(err)
	}
	b, err := run("a", "b_c", "one")
	if err != nil {
		t.Fatalf("a second pod whose name and namespace join to the first's: %v", err)
	}
	if a == b {
		t.Fatalf("two different pods got one sandbox %s", a)
	}
	_, err = run("a_b", "c", "two")
	wantCode(t, "same name, another config", err, codes.AlreadyExists)
}

// After berthd restarts, it watches the infras of ready pods again: one
// that died while berthd was down leaves its pod NOTREADY, one that dies
// later makes it NOTREADY then.
func TestInfraWatchedAcrossRestart(t *testing.T) {
	e := startContainerEnv(t)
	handler := handlerNames(t)
	if len(handler) == 0 {
		t.Skip("no runtime handler")
	}
	diesWhileDown := e.pod(t, handler[0], runtimeapi.NamespaceMode_POD)
	diesLater := e.pod(t, handler[0], runtimeapi.NamespaceMode_POD)
	downPID := podStatus(t, e.d, diesWhileDown).Info.InfraPID
	laterPID := podStatus(t, e.d, diesLater).Info.InfraPID

	e.d.Kill(t)
	if err := syscall.Kill(downPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	e.d.Restart(t)
	if s := podStatus(t, e.d, diesWhileDown).Status.State; s != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Errorf("pod whose infra died while berthd was down is %v", s)
	}
	if s := podStatus(t, e.d, diesLater).Status.State; s != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Fatalf("pod with a live infra is %v after the restart", s)
	}
	if err := syscall.Kill(laterPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		return podStatus(t, e.d, diesLater).Status.State == runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	})
}
