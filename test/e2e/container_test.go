package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"
	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A busybox container goes through its whole life in a pod: created,
// listed, started, exec'd into, logging in the CRI format, stopped by its
// signal, removed; and every step is idempotent where kubelet needs it.
func TestContainerLifecycle(t *testing.T) {
	e := startContainerEnv(t)
	forEachHandler(t, e.d, func(t *testing.T, handler string) {
		ctx := e.d.Ctx(t)
		pod := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)
		cfg := e.config("web", "sh", "-c",
			`echo hello; echo oops >&2; head -c 20000 /dev/zero | tr '\0' x; echo; trap 'exit 0' TERM; sleep 3600 & wait`)
		cfg.Labels = map[string]string{"app": "web"}
		cfg.Annotations = map[string]string{"note": "e2e"}
		id := e.create(t, pod, cfg)

		list, err := e.d.Runtime.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
			PodSandboxId: pod, LabelSelector: map[string]string{"app": "web"},
			State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_CREATED},
		}})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Containers) != 1 || list.Containers[0].Id != id || list.Containers[0].Metadata.Name != "web" {
			t.Fatalf("ListContainers(created, app=web) = %v", list.Containers)
		}
		byPrefix, err := e.d.Runtime.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{Id: id[:12]}})
		if err != nil || len(byPrefix.Containers) != 1 {
			t.Errorf("ListContainers(id prefix) = %v, %v", byPrefix.GetContainers(), err)
		}
		st := e.status(t, id)
		if st.State != runtimeapi.ContainerState_CONTAINER_CREATED || st.CreatedAt == 0 || st.StartedAt != 0 ||
			st.Labels["app"] != "web" || st.Annotations["note"] != "e2e" || st.ImageRef == "" || st.Image.Image != e.image {
			t.Errorf("created status = %v", st)
		}

		e.start(t, id)
		st = e.status(t, id)
		if st.State != runtimeapi.ContainerState_CONTAINER_RUNNING || st.StartedAt < st.CreatedAt {
			t.Errorf("running status = %v", st)
		}
		info := e.info(t, id)
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", info.Pid)); info.Pid <= 0 || err != nil {
			t.Errorf("verbose pid %d is not a live process: %v", info.Pid, err)
		}
		if r := e.exec(t, id, 0, "cat", "/etc/hostname"); !strings.HasPrefix(string(r.Stdout), "ctr-") {
			t.Errorf("container's /etc/hostname = %q, want the pod's", r.Stdout)
		}

		// The log: CRI records, a 20000-character line split into a
		// partial record and its final part.
		var lines []logLine
		waitFor(t, func() bool {
			lines = readLog(t, st.LogPath)
			return strings.Count(logText(lines, "stdout"), "\n") >= 2
		})
		if got := logText(lines, "stdout"); got != "hello\n"+strings.Repeat("x", 20000)+"\n" {
			t.Errorf("stdout in the log = %.80q... (%d bytes)", got, len(got))
		}
		if got := logText(lines, "stderr"); got != "oops\n" {
			t.Errorf("stderr in the log = %q", got)
		}
		var tags []string
		for _, l := range lines {
			if l.Stream == "stdout" {
				tags = append(tags, l.Tag)
			}
		}
		if !slices.Contains(tags, "P") {
			t.Errorf("stdout tags %v: the 20000-character line must be split into partial records", tags)
		}

		e.stop(t, id, 30)
		st = e.status(t, id)
		if st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 0 || st.Reason != "Completed" || st.FinishedAt < st.StartedAt {
			t.Errorf("stopped status = %v", st)
		}
		e.stop(t, id, 30) // stopping a stopped container succeeds
		if _, err := e.d.Runtime.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
			t.Fatal(err)
		}
		_, err = e.d.Runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
		wantCode(t, "status of a removed container", err, codes.NotFound)
		if _, err := e.d.Runtime.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
			t.Errorf("removing a removed container: %v", err)
		}
		if _, err := e.d.Runtime.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id}); err != nil {
			t.Errorf("stopping a removed container: %v", err)
		}
		if entries, _ := os.ReadDir(filepath.Join(e.d.RunRoot, "containers")); len(entries) != 0 {
			t.Errorf("run directories left after remove: %v", entries)
		}

		// A running container is removed too (killed first).
		id2 := e.run(t, pod, e.config("doomed", "sleep", "3600"))
		if _, err := e.d.Runtime.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id2}); err != nil {
			t.Fatalf("remove running container: %v", err)
		}
	})
}

// kubelet rotates a log by renaming it and calling ReopenContainerLog: the
// old file ends and the new one starts with no line lost or doubled.
func TestContainerLogReopen(t *testing.T) {
	e := startContainerEnv(t)
	forEachHandler(t, e.d, func(t *testing.T, handler string) {
		ctx := e.d.Ctx(t)
		pod := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)
		id := e.run(t, pod, e.config("counter", "sh", "-c", `i=0; while true; do echo $i; i=$((i+1)); sleep 0.005; done`))
		path := e.status(t, id).LogPath
		waitFor(t, func() bool { return len(readLog(t, path)) >= 50 })
		if err := os.Rename(path, path+".1"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.d.Runtime.ReopenContainerLog(ctx, &runtimeapi.ReopenContainerLogRequest{ContainerId: id}); err != nil {
			t.Fatalf("ReopenContainerLog: %v", err)
		}
		waitFor(t, func() bool {
			_, err := os.Stat(path)
			return err == nil && len(readLog(t, path)) >= 50
		})
		e.stop(t, id, 0)
		all := append(readLog(t, path+".1"), readLog(t, path)...)
		for i, l := range all {
			if l.Text != strconv.Itoa(i) {
				t.Fatalf("record %d of the rotated logs is %q, want %d: lost or doubled across the reopen", i, l.Text, i)
			}
		}
		_, err := e.d.Runtime.ReopenContainerLog(ctx, &runtimeapi.ReopenContainerLogRequest{ContainerId: id})
		wantCode(t, "reopen the log of a stopped container", err, codes.FailedPrecondition)
	})
}

// Exit codes and reasons: Completed, Error, OOMKilled. A termination
// message file stays out of the status message: kubelet reads the file
// itself, through the mount the status lists, and appends it to the
// runtime's message (reading it into the message too showed it twice in
// the pod's status: "bye now: bye now").
func TestContainerExitReasons(t *testing.T) {
	e := startContainerEnv(t)
	forEachHandler(t, e.d, func(t *testing.T, handler string) {
		pod := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)
		ok := e.run(t, pod, e.config("ok", "true"))
		bad := e.run(t, pod, e.config("bad", "sh", "-c", "exit 3"))

		oomCfg := e.config("oom", "sh", "-c", `a=xxxxxxxxxxxxxxxx; while true; do a=$a$a; done`)
		oomCfg.Linux = &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{
			MemoryLimitInBytes: 32 << 20, MemorySwapLimitInBytes: 32 << 20,
		}}
		oom := e.run(t, pod, oomCfg)

		msgFile := filepath.Join(t.TempDir(), "termination-log")
		if err := os.WriteFile(msgFile, nil, 0o666); err != nil {
			t.Fatal(err)
		}
		msgCfg := e.config("msg", "sh", "-c", "echo -n 'bye now' > /dev/termination-log; exit 1")
		msgCfg.Mounts = []*runtimeapi.Mount{{ContainerPath: "/dev/termination-log", HostPath: msgFile}}
		msgCfg.Annotations = map[string]string{"io.kubernetes.container.terminationMessagePath": "/dev/termination-log"}
		msg := e.run(t, pod, msgCfg)

		for _, c := range []struct {
			id, name, reason string
			code             int32
		}{
			{ok, "true", "Completed", 0},
			{bad, "exit 3", "Error", 3},
			{oom, "memory hog", "OOMKilled", 137},
			{msg, "termination message", "Error", 1},
		} {
			st := e.waitExit(t, c.id)
			if st.ExitCode != c.code || st.Reason != c.reason {
				t.Errorf("%s: exit %d reason %q, want %d %q", c.name, st.ExitCode, st.Reason, c.code, c.reason)
			}
			if st.FinishedAt == 0 || st.FinishedAt < st.StartedAt {
				t.Errorf("%s: started %d finished %d", c.name, st.StartedAt, st.FinishedAt)
			}
		}
		st := e.status(t, msg)
		if st.Message != "" {
			t.Errorf("status message = %q, want none: the termination message is kubelet's to read", st.Message)
		}
		listed := false
		for _, m := range st.Mounts {
			listed = listed || (m.ContainerPath == "/dev/termination-log" && m.HostPath == msgFile)
		}
		if !listed {
			t.Errorf("status mounts %v do not list the termination message file kubelet reads", st.Mounts)
		}
		if b, err := os.ReadFile(msgFile); err != nil || string(b) != "bye now" {
			t.Errorf("termination message file holds %q (%v), want the container's %q", b, err, "bye now")
		}
	})
}

// StopContainer: a container that ignores SIGTERM is killed after its
// grace period; the image's stop signal is the one sent; timeout 0 kills
// at once.
func TestContainerStopSignalAndGrace(t *testing.T) {
	e := startContainerEnv(t)
	_, appRef, _ := e.push(t, "app:1.0", appImage)
	e.mustPull(t, appRef)
	forEachHandler(t, e.d, func(t *testing.T, handler string) {
		pod := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)

		stubborn := e.run(t, pod, e.config("stubborn", "sh", "-c", `trap '' TERM; echo ready; while true; do sleep 1; done`))
		e.waitLog(t, stubborn, "ready")
		start := time.Now()
		e.stop(t, stubborn, 2)
		took := time.Since(start)
		st := e.status(t, stubborn)
		if st.ExitCode != 137 || took < 2*time.Second {
			t.Errorf("container ignoring SIGTERM: exit %d after %s, want 137 (SIGKILL) after the 2s grace period", st.ExitCode, took)
		}

		usr1 := e.config("usr1", "sh", "-c", `trap 'exit 0' USR1; echo ready; sleep 3600 & wait`)
		usr1.Image.Image = appRef
		id := e.run(t, pod, usr1)
		if got := e.status(t, id).StopSignal; got != runtimeapi.Signal_SIGNAL_SIGUSR1 {
			t.Errorf("StopSignal = %v, want the image's SIGUSR1", got)
		}
		e.waitLog(t, id, "ready")
		e.stop(t, id, 60)
		if st := e.status(t, id); st.ExitCode != 0 || st.Reason != "Completed" {
			t.Errorf("container stopped with the image's SIGUSR1: exit %d %q, want 0 Completed", st.ExitCode, st.Reason)
		}

		polite := e.run(t, pod, e.config("polite", "sh", "-c", `trap 'exit 0' TERM; echo ready; sleep 3600 & wait`))
		e.waitLog(t, polite, "ready")
		e.stop(t, polite, 0)
		if st := e.status(t, polite); st.ExitCode != 137 {
			t.Errorf("timeout 0: exit %d, want 137 (killed at once)", st.ExitCode)
		}
	})
}

// Command, args, env, user and working directory merge with the image's
// config as kubelet expects.
func TestContainerImageConfig(t *testing.T) {
	e := startContainerEnv(t)
	_, appRef, _ := e.push(t, "app:1.0", appImage)
	e.mustPull(t, appRef)
	i64 := func(v int64) *runtimeapi.Int64Value { return &runtimeapi.Int64Value{Value: v} }
	forEachHandler(t, e.d, func(t *testing.T, handler string) {
		pod := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)
		cases := []struct {
			name string
			edit func(*runtimeapi.ContainerConfig)
			want string
		}{
			{"image", func(c *runtimeapi.ContainerConfig) {}, "image-cmd hi 1000:1000 /home/berth"},
			{"args", func(c *runtimeapi.ContainerConfig) {
				c.Args = []string{`echo "args $GREETING $SHARED $ONLY"`}
				c.Envs = []*runtimeapi.KeyValue{{Key: "SHARED", Value: []byte("request")}, {Key: "ONLY", Value: []byte("req")}}
			}, "args hi request req"},
			{"command", func(c *runtimeapi.ContainerConfig) {
				c.Command, c.Args = []string{"/bin/echo", "cmd"}, []string{"x"}
			}, "cmd x"},
			{"user-workdir", func(c *runtimeapi.ContainerConfig) {
				c.WorkingDir = "/tmp"
				c.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{RunAsUser: i64(0)}}
			}, "image-cmd hi 0:0 /tmp"},
			{"groups", func(c *runtimeapi.ContainerConfig) {
				c.Args = []string{`echo "$(id -u):$(id -g) $(id -G)"`}
				c.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
					RunAsUser: i64(1000), RunAsGroup: i64(2000), SupplementalGroups: []int64{3000}}}
			}, "1000:2000 2000 3000"},
		}
		for _, c := range cases {
			cfg := &runtimeapi.ContainerConfig{
				Metadata: &runtimeapi.ContainerMetadata{Name: c.name},
				Image:    &runtimeapi.ImageSpec{Image: appRef},
				LogPath:  c.name + ".log",
			}
			c.edit(cfg)
			id := e.run(t, pod, cfg)
			st := e.waitExit(t, id)
			if got := strings.TrimSpace(logText(readLog(t, st.LogPath), "stdout")); got != c.want || st.ExitCode != 0 {
				t.Errorf("%s: output %q (exit %d), want %q", c.name, got, st.ExitCode, c.want)
			}
		}
	})
}

// Read-only root, default capabilities against privileged ones (read
// from /proc/self/status), added and dropped capabilities.
func TestContainerSecurity(t *testing.T) {
	e := startContainerEnv(t)
	daemonCaps := procStatusField(t, fmt.Sprintf("/proc/%d/status", e.d.PID()), "CapBnd")
	forEachHandler(t, e.d, func(t *testing.T, handler string) {
		pod := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)
		sc := func(s *runtimeapi.LinuxContainerSecurityContext) *runtimeapi.LinuxContainerConfig {
			return &runtimeapi.LinuxContainerConfig{SecurityContext: s}
		}
		caps := func(id string) string {
			out := string(e.exec(t, id, 0, "grep", "CapEff", "/proc/self/status").Stdout)
			return strings.TrimSpace(strings.TrimPrefix(out, "CapEff:"))
		}

		ro := e.config("ro", "sleep", "3600")
		ro.Linux = sc(&runtimeapi.LinuxContainerSecurityContext{ReadonlyRootfs: true})
		roID := e.run(t, pod, ro)
		if r := e.exec(t, roID, 0, "touch", "/x"); r.ExitCode == 0 || !strings.Contains(string(r.Stderr), "Read-only file system") {
			t.Errorf("touch on a read-only root: exit %d, %q", r.ExitCode, r.Stderr)
		}
		if r := e.exec(t, roID, 0, "touch", "/dev/shm/x"); r.ExitCode != 0 {
			t.Errorf("/dev/shm must stay writable under a read-only root: %q", r.Stderr)
		}

		def := e.run(t, pod, e.config("default", "sleep", "3600"))
		// CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
		// NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP.
		if got := caps(def); got != "00000000a80425fb" {
			t.Errorf("default capabilities %s, want 00000000a80425fb (containerd's default set)", got)
		}

		priv := e.config("privileged", "sleep", "3600")
		priv.Linux = sc(&runtimeapi.LinuxContainerSecurityContext{Privileged: true})
		privID := e.run(t, e.privilegedPod(t, handler), priv)
		if got := caps(privID); got != daemonCaps {
			t.Errorf("privileged capabilities %s, want berthd's bounding set %s", got, daemonCaps)
		}
		if r := e.exec(t, privID, 0, "sh", "-c", "ls /dev | wc -l"); atoi(t, r.Stdout) < 20 {
			t.Errorf("privileged container sees %s devices, want the host's", r.Stdout)
		}

		adj := e.config("adjusted", "sleep", "3600")
		adj.Linux = sc(&runtimeapi.LinuxContainerSecurityContext{Capabilities: &runtimeapi.Capability{
			AddCapabilities: []string{"NET_ADMIN"}, DropCapabilities: []string{"CHOWN", "KILL"}}})
		// + NET_ADMIN (bit 12), - CHOWN (bit 0), - KILL (bit 5)
		if got := caps(e.run(t, pod, adj)); got != "00000000a80435da" {
			t.Errorf("add NET_ADMIN, drop CHOWN and KILL: capabilities %s, want 00000000a80435da", got)
		}
	})
}

// ExecSync returns output and exit code; past its timeout it answers
// DeadlineExceeded and the command is gone.
func TestContainerExecSync(t *testing.T) {
	e := startContainerEnv(t)
	forEachHandler(t, e.d, func(t *testing.T, handler string) {
		ctx := e.d.Ctx(t)
		pod := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)
		id := e.run(t, pod, e.config("target", "sleep", "3600"))
		r := e.exec(t, id, 0, "sh", "-c", "echo out; echo err >&2; exit 5")
		if string(r.Stdout) != "out\n" || string(r.Stderr) != "err\n" || r.ExitCode != 5 {
			t.Errorf("exec = %q %q %d", r.Stdout, r.Stderr, r.ExitCode)
		}
		_, err := e.d.Runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"sleep", "31"}, Timeout: 1})
		wantCode(t, "exec past its timeout", err, codes.DeadlineExceeded)
		if r := e.exec(t, id, 0, "ps"); strings.Contains(string(r.Stdout), "sleep 31") {
			t.Errorf("the timed-out command still runs:\n%s", r.Stdout)
		}
		// The runtime refuses a missing binary: the caller's mistake,
		// FailedPrecondition naming it, as ExecStream answers (issue 23).
		_, err = e.d.Runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"/no/such/binary"}})
		wantCode(t, "exec of a missing binary", err, codes.FailedPrecondition)
		if err != nil && !strings.Contains(err.Error(), "/no/such/binary") {
			t.Errorf("exec of a missing binary: %v, want the binary named", err)
		}
		e.stop(t, id, 0)
		_, err = e.d.Runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"true"}})
		wantCode(t, "exec in a stopped container", err, codes.FailedPrecondition)
	})
}

// UpdateContainerResources reaches the container's cgroup files: cgroup
// v1's, or on a cgroup v2 node (test/vm) memory.max, cpu.weight (from the
// shares, by the runtimes' conversion) and cpu.max.
func TestContainerUpdateResources(t *testing.T) {
	e := startContainerEnv(t)
	forEachHandler(t, e.d, func(t *testing.T, handler string) {
		ctx := e.d.Ctx(t)
		pod := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)
		cfg := e.config("limited", "sleep", "3600")
		cfg.Linux = &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{
			MemoryLimitInBytes: 64 << 20, CpuShares: 512,
		}}
		id := e.run(t, pod, cfg)
		cg := cgroupDirOf(t, e.info(t, id).RuntimeSpec.Linux.CgroupsPath)
		if cgroups.IsCgroup2UnifiedMode() {
			// v2: memory.max, cpu.weight (runc's mapping of shares), cpu.max.
			read := func(f string) string { return readCgroupFile(t, cg, f) }
			if got := read("memory.max"); got != strconv.Itoa(64<<20) {
				t.Errorf("memory.max at create = %s", got)
			}
			if got := read("cpu.weight"); !isWeightOf(got, 512) {
				t.Errorf("cpu.weight at create = %s, want the weight of shares 512", got)
			}
			update := &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 128 << 20, CpuShares: 1024, CpuQuota: 50000, CpuPeriod: 100000}
			if _, err := e.d.Runtime.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{ContainerId: id, Linux: update}); err != nil {
				t.Fatalf("UpdateContainerResources: %v", err)
			}
			if got := read("memory.max"); got != strconv.Itoa(128<<20) {
				t.Errorf("memory.max after update = %s, want %d", got, 128<<20)
			}
			if got := read("cpu.weight"); !isWeightOf(got, 1024) {
				t.Errorf("cpu.weight after update = %s, want the weight of shares 1024", got)
			}
			if got := read("cpu.max"); got != "50000 100000" {
				t.Errorf("cpu.max after update = %q", got)
			}
		} else {
			mem := filepath.Join("/sys/fs/cgroup/memory", cg, "memory.limit_in_bytes")
			shares := filepath.Join("/sys/fs/cgroup/cpu", cg, "cpu.shares")
			quota := filepath.Join("/sys/fs/cgroup/cpu", cg, "cpu.cfs_quota_us")
			if got := readInt(t, mem); got != 64<<20 {
				t.Errorf("memory limit at create = %d", got)
			}
			if got := readInt(t, shares); got != 512 {
				t.Errorf("cpu shares at create = %d", got)
			}
			update := &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 128 << 20, CpuShares: 1024, CpuQuota: 50000, CpuPeriod: 100000}
			if _, err := e.d.Runtime.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{ContainerId: id, Linux: update}); err != nil {
				t.Fatalf("UpdateContainerResources: %v", err)
			}
			if got := readInt(t, mem); got != 128<<20 {
				t.Errorf("memory limit after update = %d, want %d", got, 128<<20)
			}
			if got := readInt(t, shares); got != 1024 {
				t.Errorf("cpu shares after update = %d", got)
			}
			if got := readInt(t, quota); got != 50000 {
				t.Errorf("cpu quota after update = %d", got)
			}
		}
		if r := e.status(t, id).GetResources().GetLinux(); r.GetMemoryLimitInBytes() != 128<<20 || r.GetCpuQuota() != 50000 {
			t.Errorf("status resources after update = %v", r)
		}
	})
}

// isWeightOf says whether a cgroup v2 cpu.weight is what a runtime writes
// for shares: opencontainers/cgroups' mapping (berth-runner, runc 1.3+,
// crun 1.23+) or the linear one older runc and crun use.
func isWeightOf(weight string, shares uint64) bool {
	linear := 1 + (shares-2)*9999/262142
	return weight == strconv.FormatUint(cgroups.ConvertCPUSharesToCgroupV2Value(shares), 10) ||
		weight == strconv.FormatUint(linear, 10)
}

// Names are unique in a pod (per attempt); kubelet's retries of a
// CreateContainer get the same container; bad requests are
// InvalidArgument and leave nothing behind.
func TestContainerNamesAndBadRequests(t *testing.T) {
	e := startContainerEnv(t)
	forEachHandler(t, e.d, func(t *testing.T, handler string) {
		ctx := e.d.Ctx(t)
		pod := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)
		e.create(t, pod, e.config("dup", "sleep", "1"))
		_, err := e.tryCreate(t, pod, e.config("dup", "sleep", "1"))
		wantCode(t, "second container with the same name and attempt", err, codes.AlreadyExists)
		again := e.config("dup", "sleep", "1")
		again.Metadata.Attempt = 1
		e.create(t, pod, again)

		// Two identical calls at once (a retry while the first works)
		// get the same container.
		var wg sync.WaitGroup
		ids := make([]string, 2)
		errs := make([]error, 2)
		for i := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ids[i], errs[i] = e.tryCreate(t, pod, e.config("twice", "sleep", "1"))
			}()
		}
		wg.Wait()
		if errs[0] != nil || errs[1] != nil || ids[0] != ids[1] {
			t.Errorf("concurrent identical creates: %q %v / %q %v, want one container", ids[0], errs[0], ids[1], errs[1])
		}
		// A call whose deadline passes, then its retry: one container.
		short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
		_, err = e.d.Runtime.CreateContainer(short, &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: e.config("late", "sleep", "1"), SandboxConfig: e.podConfigs[pod]})
		cancel()
		lateID, retryErr := e.tryCreate(t, pod, e.config("late", "sleep", "1"))
		if retryErr != nil && err == nil {
			// The first call made it in time: the retry is a duplicate.
			wantCode(t, "retry after a call that succeeded", retryErr, codes.AlreadyExists)
		} else if retryErr != nil {
			t.Errorf("retry after a deadline: %v (first call: %v)", retryErr, err)
		}
		list, _ := e.d.Runtime.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{PodSandboxId: pod}})
		late := 0
		for _, c := range list.Containers {
			if c.Metadata.Name == "late" {
				late++
				if lateID != "" && c.Id != lateID {
					t.Errorf("retry returned %s, but the container is %s", lateID, c.Id)
				}
			}
		}
		if late != 1 {
			t.Errorf("%d containers named late, want 1", late)
		}
		before := len(list.Containers)
		monitorsBefore := monitoredIDs()

		bad := map[string]func(c *runtimeapi.ContainerConfig){
			"no metadata":      func(c *runtimeapi.ContainerConfig) { c.Metadata = nil },
			"no image":         func(c *runtimeapi.ContainerConfig) { c.Image = nil },
			"relative workdir": func(c *runtimeapi.ContainerConfig) { c.WorkingDir = "tmp" },
			"unknown cap":      func(c *runtimeapi.ContainerConfig) { c.Linux = capAdd("FLY") },
			"missing host path": func(c *runtimeapi.ContainerConfig) {
				c.Mounts = []*runtimeapi.Mount{{ContainerPath: "/x", HostPath: "/no/such/dir"}}
			},
			"escaping log path": func(c *runtimeapi.ContainerConfig) { c.LogPath = "../../escape.log" },
			"bad device": func(c *runtimeapi.ContainerConfig) {
				c.Devices = []*runtimeapi.Device{{HostPath: "/etc/passwd", ContainerPath: "/dev/x"}}
			},
		}
		for name, edit := range bad {
			cfg := e.config("bad", "true")
			edit(cfg)
			_, err := e.tryCreate(t, pod, cfg)
			wantCode(t, name, err, codes.InvalidArgument)
		}
		_, err = e.tryCreate(t, strings.Repeat("0", 64), e.config("x", "true"))
		wantCode(t, "unknown pod", err, codes.NotFound)
		unknownImage := e.config("x", "true")
		unknownImage.Image.Image = "127.0.0.1:1/nothing:here"
		_, err = e.tryCreate(t, pod, unknownImage)
		wantCode(t, "image not pulled", err, codes.NotFound)
		_, err = e.d.Runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: strings.Repeat("f", 64)})
		wantCode(t, "start unknown", err, codes.NotFound)
		_, err = e.d.Runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: ids[0]})
		wantCode(t, "exec without a command", err, codes.InvalidArgument)

		list, _ = e.d.Runtime.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{PodSandboxId: pod}})
		if len(list.Containers) != before {
			t.Errorf("failed creates left containers: %d, want %d", len(list.Containers), before)
		}
		if entries, _ := os.ReadDir(filepath.Join(e.d.RunRoot, "containers")); len(entries) != before {
			t.Errorf("failed creates left run directories: %d, want %d", len(entries), before)
		}
		// A create spawns its monitor before the root filesystem exists:
		// a failed one must take its monitor with it. One that is still
		// on its way out (a loaded machine, a -race berthd) gets a few
		// seconds; one that stays fails.
		newMonitors := func() []string {
			var ids []string
			for id := range monitoredIDs() {
				if !monitorsBefore[id] {
					ids = append(ids, id)
				}
			}
			return ids
		}
		for deadline := time.Now().Add(10 * time.Second); len(newMonitors()) > 0 && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
		}
		for _, id := range newMonitors() {
			t.Errorf("failed creates left monitor for %s: %v", id, monitorsOf(t, id))
		}
	})
}

// Containers and their monitors outlive a SIGKILLed berthd; the next
// berthd sees each with its right state, exits that happened meanwhile
// included, and still manages them.
func TestContainersSurviveDaemonKill(t *testing.T) {
	e := startContainerEnv(t)
	type survivors struct{ running, exits, created string }
	got := map[string]survivors{}
	var pids []int
	// Pods and containers belong to the whole test (not a subtest, whose
	// cleanup would remove them before the kill).
	for _, handler := range handlerNames(t) {
		pod := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)
		s := survivors{
			running: e.run(t, pod, e.config("running", "sh", "-c", "echo before; sleep 3600")),
			exits:   e.run(t, pod, e.config("exits", "sh", "-c", "sleep 2; exit 5")),
			created: e.create(t, pod, e.config("created", "sh", "-c", "echo late start; sleep 3600")),
		}
		info := e.info(t, s.running)
		pids = append(pids, info.Pid, info.MonitorPid)
		got[handler] = s
	}

	e.d.Kill(t)
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err != nil {
			t.Errorf("process %d died with berthd: %v", pid, err)
		}
	}
	time.Sleep(3 * time.Second) // "exits" exits while berthd is down
	e.d.Restart(t)

	forEachHandler(t, e.d, func(t *testing.T, handler string) {
		s := got[handler]
		if st := e.status(t, s.running); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Errorf("running container after restart: %v", st.State)
		}
		st := e.status(t, s.exits)
		if st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 5 {
			t.Errorf("container that exited while berthd was down: %v exit %d", st.State, st.ExitCode)
		}
		if st := e.status(t, s.created); st.State != runtimeapi.ContainerState_CONTAINER_CREATED {
			t.Errorf("created container after restart: %v", st.State)
		}
		if r := e.exec(t, s.running, 0, "echo", "still here"); string(r.Stdout) != "still here\n" {
			t.Errorf("exec after restart: %q", r.Stdout)
		}
		e.start(t, s.created)
		e.stop(t, s.running, 0)
		if st := e.status(t, s.running); st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 137 {
			t.Errorf("stop after restart: %v exit %d", st.State, st.ExitCode)
		}
		if text := logText(readLog(t, e.status(t, s.running).LogPath), "stdout"); text != "before\n" {
			t.Errorf("log across the restart: %q", text)
		}
	})
}

// A pod with a shared PID namespace has berth-pause as PID 1, run through
// the pod's runtime handler; containers in PID mode POD join it.
func TestSharedPIDNamespace(t *testing.T) {
	e := startContainerEnv(t)
	forEachHandler(t, e.d, func(t *testing.T, handler string) {
		pod := e.pod(t, handler, runtimeapi.NamespaceMode_POD)
		infraPID := podStatus(t, e.d, pod).Info.InfraPID
		if infraPID <= 0 {
			t.Fatalf("pod with a shared PID namespace has no infra pid")
		}
		shared := func(name string, cmd ...string) *runtimeapi.ContainerConfig {
			c := e.config(name, cmd...)
			c.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_POD}}}
			return c
		}
		a := e.run(t, pod, shared("a", "sleep", "3600"))
		b := e.run(t, pod, shared("b", "sleep", "3601"))
		if r := e.exec(t, b, 0, "cat", "/proc/1/cmdline"); strings.TrimRight(string(r.Stdout), "\x00") != "/pause" {
			t.Errorf("PID 1 of the pod is %q, want /pause", r.Stdout)
		}
		if r := e.exec(t, b, 0, "ps"); !strings.Contains(string(r.Stdout), "sleep 3600") {
			t.Errorf("container b does not see container a's process:\n%s", r.Stdout)
		}
		infraNS, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", infraPID))
		if err != nil {
			t.Fatal(err)
		}
		ctrNS, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", e.info(t, a).Pid))
		if err != nil || ctrNS != infraNS {
			t.Errorf("container's pid namespace %s (%v), infra's %s", ctrNS, err, infraNS)
		}
		// Stopping a container of a shared namespace kills all its
		// processes, not only its init.
		e.exec(t, a, 0, "sh", "-c", "sleep 3602 &")
		e.stop(t, a, 0)
		if r := e.exec(t, b, 0, "ps"); strings.Contains(string(r.Stdout), "sleep 3602") {
			t.Errorf("a process of the stopped container survived:\n%s", r.Stdout)
		}
		if _, err := e.d.Runtime.StopPodSandbox(e.d.Ctx(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(infraPID, 0); err == nil {
			t.Errorf("infra process %d still runs after StopPodSandbox", infraPID)
		}
	})
}

func capAdd(c string) *runtimeapi.LinuxContainerConfig {
	return &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
		Capabilities: &runtimeapi.Capability{AddCapabilities: []string{c}}}}
}

func procStatusField(t testing.TB, path, field string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in %s", field, path)
	return ""
}

func readInt(t testing.TB, path string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return int64(atoi(t, b))
}

func atoi(t testing.TB, b []byte) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%q is not a number", b)
	}
	return n
}

// berthctl drives a container's life: create, start, ps, exec, logs,
// inspect, stop, rm.
func TestBerthctlContainers(t *testing.T) {
	e := startContainerEnv(t)
	pod := e.pod(t, handlerNames(t)[0], runtimeapi.NamespaceMode_CONTAINER)
	run := func(args ...string) string {
		t.Helper()
		out, err := e.berthctl(t, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	out := run("create", "-name", "cli", "-env", "WHO=berthctl", "-label", "via=cli", pod, e.image,
		"sh", "-c", `echo "hello $WHO"; echo to-stderr >&2; trap 'exit 0' TERM; sleep 3600 & wait`)
	lines := strings.Fields(out)
	id := lines[len(lines)-1]
	if len(id) != 64 {
		t.Fatalf("create printed %q, want a container id", out)
	}
	t.Cleanup(func() {
		e.d.Runtime.RemoveContainer(context.Background(), &runtimeapi.RemoveContainerRequest{ContainerId: id})
	})
	if out := run("ps", "-a", "-q", "-label", "via=cli"); strings.TrimSpace(out) != id {
		t.Errorf("ps -a -q -label via=cli = %q", out)
	}
	run("start", id[:12])
	if out := run("ps", "-pod", pod); !strings.Contains(out, id[:13]) || !strings.Contains(out, "Running") {
		t.Errorf("ps after start:\n%s", out)
	}
	if out := run("exec", id, "cat", "/proc/1/cmdline"); !strings.HasPrefix(out, "sh") {
		t.Errorf("exec output %q", out)
	}
	if _, err := e.berthctl(t, "exec", id, "sh", "-c", "exit 4"); err == nil || !strings.Contains(err.Error(), "exit status 4") {
		t.Errorf("berthctl exec of a failing command: %v, want exit status 4", err)
	}
	waitFor(t, func() bool { out, _ := e.berthctl(t, "logs", id); return out == "hello berthctl\n" })
	if out := run("logs", "-tail", "2", "-timestamps", id); !strings.HasSuffix(out, " hello berthctl\n") || strings.Count(out, "\n") != 1 {
		t.Errorf("logs -tail 2 -timestamps (stdout only) = %q", out)
	}
	if out := run("inspect", id); !strings.Contains(out, "Running") || !strings.Contains(out, "Pid") {
		t.Errorf("inspect:\n%s", out)
	}
	if out := run("-o", "json", "inspect", id); !strings.Contains(out, `runtimeSpec`) {
		t.Errorf("inspect -o json lacks the spec:\n%.300s", out)
	}
	run("stop", "-t", "5", id)
	if st := e.status(t, id); st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 0 {
		t.Errorf("after berthctl stop: %v exit %d", st.State, st.ExitCode)
	}
	run("rm", id)
	if out := run("ps", "-a", "-q"); strings.Contains(out, id) {
		t.Errorf("ps -a after rm lists %s", id)
	}
}

// BenchmarkCreateStartContainer times CreateContainer plus StartContainer
// of a busybox container in a ready pod, per runtime handler.
func BenchmarkCreateStartContainer(b *testing.B) {
	e := startContainerEnv(b)
	for _, handler := range handlerNames(b) {
		b.Run(handler, func(b *testing.B) {
			pod := e.pod(b, handler, runtimeapi.NamespaceMode_CONTAINER)
			ctx := e.d.Ctx(b)
			for i := 0; b.Loop(); i++ {
				resp, err := e.d.Runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
					PodSandboxId: pod, Config: e.config(fmt.Sprintf("bench-%d", i), "sleep", "3600")})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := e.d.Runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: resp.ContainerId}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if _, err := e.d.Runtime.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: resp.ContainerId}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// BenchmarkExecSync times an ExecSync of `true` (a kubelet exec probe)
// and reports berthd's resident memory growth over 1000 of them, after a
// warm-up, as rss-KiB/1000execs.
func BenchmarkExecSync(b *testing.B) {
	e := startContainerEnv(b)
	for _, handler := range handlerNames(b) {
		b.Run(handler, func(b *testing.B) {
			pod := e.pod(b, handler, runtimeapi.NamespaceMode_CONTAINER)
			id := e.run(b, pod, e.config("probed", "sleep", "3600"))
			ctx := e.d.Ctx(b)
			probe := func() {
				r, err := e.d.Runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"true"}, Timeout: 10})
				if err != nil || r.ExitCode != 0 {
					b.Fatalf("ExecSync: %v (exit %d)", err, r.GetExitCode())
				}
			}
			for b.Loop() {
				probe()
			}
			b.StopTimer()
			for range 100 {
				probe()
			}
			before := rssKiB(b, e.d.PID())
			for range 1000 {
				probe()
			}
			b.ReportMetric(float64(rssKiB(b, e.d.PID())-before), "rss-KiB/1000execs")
		})
	}
}

func rssKiB(t testing.TB, pid int) int {
	t.Helper()
	v := procStatusField(t, fmt.Sprintf("/proc/%d/status", pid), "VmRSS")
	return atoi(t, []byte(strings.TrimSuffix(v, " kB")))
}

// kubelet names the image by its ID and sends the name the user wrote as
// user_specified_image: ContainerStatus reports that name, so `kubectl
// get pod` shows what the user wrote. Without it, a name of the image.
func TestContainerStatusReportsImageName(t *testing.T) {
	e := startContainerEnv(t)
	ctx := e.d.Ctx(t)
	img, err := e.d.Image.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: e.image}})
	if err != nil || img.GetImage() == nil {
		t.Fatalf("ImageStatus %s: %v %v", e.image, img, err)
	}
	id := img.Image.Id
	pod := e.pod(t, "", runtimeapi.NamespaceMode_CONTAINER)

	cfg := e.config("by-id-with-name", "true")
	cfg.Image = &runtimeapi.ImageSpec{Image: id, UserSpecifiedImage: "busybox-as-written"}
	st := e.status(t, e.create(t, pod, cfg))
	if st.Image.GetImage() != "busybox-as-written" || st.ImageId != id || !strings.Contains(st.ImageRef, "@sha256:") {
		t.Errorf("with user_specified_image: image %q id %q ref %q", st.Image.GetImage(), st.ImageId, st.ImageRef)
	}

	cfg = e.config("by-id", "true")
	cfg.Image = &runtimeapi.ImageSpec{Image: id}
	st = e.status(t, e.create(t, pod, cfg))
	if st.Image.GetImage() != e.image {
		t.Errorf("by id alone: image %q, want its tag %q", st.Image.GetImage(), e.image)
	}
}
