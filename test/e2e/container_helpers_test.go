package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/test/framework"
	"github.com/berth-cri/berth/test/testimage"
)

// ctrEnv is a berthd with a registry, a loopback-only CNI network (pods
// get their own network namespace without a bridge to clean up) and a
// busybox image pulled.
type ctrEnv struct {
	*imageEnv
	// image is the default busybox image's reference: no entrypoint, cmd
	// /bin/sh, user root.
	image string
	// podConfigs are the configs of the pods the test ran, which
	// CreateContainer requests carry as kubelet's do.
	podConfigs map[string]*runtimeapi.PodSandboxConfig
}

// appImage is an image with every config field set, for the
// command/env/user/workdir tests.
var appImage = testimage.Spec{
	Name:       "app",
	Entrypoint: []string{"/bin/sh", "-c"},
	Cmd:        []string{`echo "image-cmd $GREETING $(id -u):$(id -g) $(pwd)"`},
	Env:        []string{"GREETING=hi", "SHARED=image"},
	User:       "berth",
	WorkingDir: "/home/berth",
	StopSignal: "SIGUSR1",
}

// startContainerEnv is startImageEnv's setup for any testing.TB, so
// benchmarks share it.
func startContainerEnv(t testing.TB) *ctrEnv {
	t.Helper()
	return startContainerEnvWith(t, "")
}

// startContainerEnvWith is startContainerEnv with more config (TOML).
func startContainerEnvWith(t testing.TB, extraTOML string) *ctrEnv {
	t.Helper()
	framework.RequireRoot(t)
	reg := testimage.StartRegistry(t, testimage.RegistryOptions{})
	conf := testimage.WriteRegistriesConf(t, testimage.ConfOptions{Insecure: []string{reg.Host}})
	d := framework.StartDaemon(t, framework.Options{ConfigTOML: fmt.Sprintf("[image]\nregistries_conf = %q\n", conf) + extraTOML})
	e := &ctrEnv{imageEnv: &imageEnv{d: d, reg: reg}, podConfigs: map[string]*runtimeapi.PodSandboxConfig{}}
	lo := `{"cniVersion":"1.0.0","name":"loopback-only","plugins":[{"type":"loopback"}]}`
	if err := os.WriteFile(filepath.Join(d.CNIConfDir, "10-lo.conflist"), []byte(lo), 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := testimage.Busybox(testimage.Spec{Name: "plain", Cmd: []string{"/bin/sh"}})
	if err != nil {
		t.Fatal(err)
	}
	_, e.image = reg.Push(t, "busybox:1.0", img)
	if _, err := d.Image.PullImage(d.Ctx(t), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: e.image}}); err != nil {
		t.Fatalf("pull %s: %v", e.image, err)
	}
	return e
}

// handlerNames are the runtime handlers every container test runs with
// that are there: the bundled berth-runner and runc. BERTH_TEST_HANDLERS
// (comma-separated) names them instead: test/vm adds crun, which cannot
// run on a host with hybrid cgroups.
func handlerNames(t testing.TB) []string {
	if v := os.Getenv("BERTH_TEST_HANDLERS"); v != "" {
		return strings.Split(v, ",")
	}
	var out []string
	if framework.HasBinary(t, "berth-runner") {
		out = append(out, "berth")
	} else {
		t.Log("handler berth skipped: berth-runner is not built yet (no cmd/berth-runner)")
	}
	if _, err := os.Stat("/usr/sbin/runc"); err == nil {
		out = append(out, "runc")
	} else {
		t.Log("handler runc skipped: runc is not installed at /usr/sbin/runc")
	}
	return out
}

// forEachHandler runs fn as a subtest per runtime handler.
func forEachHandler(t *testing.T, d *framework.Daemon, fn func(t *testing.T, handler string)) {
	names := handlerNames(t)
	if len(names) == 0 {
		t.Skip("no runtime handler: neither berth-runner nor runc is there")
	}
	for _, h := range names {
		t.Run(h, func(t *testing.T) { fn(t, h) })
	}
}

// pod runs a pod with the handler and a log directory of the test's own;
// it is removed (with its containers) when the test ends.
func (e *ctrEnv) pod(t testing.TB, handler string, pidMode runtimeapi.NamespaceMode) string {
	t.Helper()
	name := fmt.Sprintf("ctr-%08x", rand.Uint32())
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "e2e", Uid: "uid-" + name},
		Hostname:     name,
		LogDirectory: t.TempDir(),
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Pid: pidMode},
		}},
	}
	resp, err := e.d.Runtime.RunPodSandbox(e.d.Ctx(t), &runtimeapi.RunPodSandboxRequest{Config: cfg, RuntimeHandler: handler})
	if err != nil {
		t.Fatalf("RunPodSandbox: %v", err)
	}
	id := resp.PodSandboxId
	t.Cleanup(func() {
		ctx := context.Background()
		if _, err := e.d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Errorf("StopPodSandbox: %v", err)
		}
		if _, err := e.d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Errorf("RemovePodSandbox: %v", err)
		}
	})
	e.podConfigs[id] = cfg
	return id
}

// config is a container config for the default image running cmd.
func (e *ctrEnv) config(name string, cmd ...string) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    &runtimeapi.ImageSpec{Image: e.image},
		Command:  cmd,
		LogPath:  name + ".log",
	}
}

// create creates a container and removes it when the test ends.
func (e *ctrEnv) create(t testing.TB, podID string, cfg *runtimeapi.ContainerConfig) string {
	t.Helper()
	id, err := e.tryCreate(t, podID, cfg)
	if err != nil {
		t.Fatalf("CreateContainer %s: %v", cfg.GetMetadata().GetName(), err)
	}
	return id
}

func (e *ctrEnv) tryCreate(t testing.TB, podID string, cfg *runtimeapi.ContainerConfig) (string, error) {
	t.Helper()
	resp, err := e.d.Runtime.CreateContainer(e.d.Ctx(t), &runtimeapi.CreateContainerRequest{
		PodSandboxId: podID, Config: cfg, SandboxConfig: e.podConfigs[podID],
	})
	if err != nil {
		return "", err
	}
	id := resp.ContainerId
	t.Cleanup(func() {
		if _, err := e.d.Runtime.RemoveContainer(context.Background(), &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
			t.Errorf("RemoveContainer %s: %v", id, err)
		}
	})
	return id, nil
}

// run creates and starts a container.
func (e *ctrEnv) run(t testing.TB, podID string, cfg *runtimeapi.ContainerConfig) string {
	t.Helper()
	id := e.create(t, podID, cfg)
	e.start(t, id)
	return id
}

func (e *ctrEnv) start(t testing.TB, id string) {
	t.Helper()
	if _, err := e.d.Runtime.StartContainer(e.d.Ctx(t), &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("StartContainer %s: %v", id, err)
	}
}

func (e *ctrEnv) stop(t testing.TB, id string, timeout int64) {
	t.Helper()
	if _, err := e.d.Runtime.StopContainer(e.d.Ctx(t), &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: timeout}); err != nil {
		t.Fatalf("StopContainer %s: %v", id, err)
	}
}

func (e *ctrEnv) status(t testing.TB, id string) *runtimeapi.ContainerStatus {
	t.Helper()
	resp, err := e.d.Runtime.ContainerStatus(e.d.Ctx(t), &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		t.Fatalf("ContainerStatus %s: %v", id, err)
	}
	return resp.Status
}

// containerInfo is the verbose status's info, decoded.
type containerInfo struct {
	Pid         int `json:"pid"`
	MonitorPid  int `json:"monitorPid"`
	RuntimeSpec struct {
		Linux struct {
			CgroupsPath string `json:"cgroupsPath"`
		} `json:"linux"`
	} `json:"runtimeSpec"`
}

func (e *ctrEnv) info(t testing.TB, id string) *containerInfo {
	t.Helper()
	resp, err := e.d.Runtime.ContainerStatus(e.d.Ctx(t), &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil {
		t.Fatalf("ContainerStatus %s: %v", id, err)
	}
	var info containerInfo
	if err := json.Unmarshal([]byte(resp.Info["info"]), &info); err != nil {
		t.Fatalf("verbose info %q: %v", resp.Info["info"], err)
	}
	return &info
}

// waitExit polls until the container has exited and returns its status.
func (e *ctrEnv) waitExit(t testing.TB, id string) *runtimeapi.ContainerStatus {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st := e.status(t, id)
		if st.State == runtimeapi.ContainerState_CONTAINER_EXITED {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s still %v after 60s", id, st.State)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitLog waits until the container's stdout holds text.
func (e *ctrEnv) waitLog(t testing.TB, id, text string) {
	t.Helper()
	path := e.status(t, id).LogPath
	waitFor(t, func() bool { return strings.Contains(logText(readLog(t, path), "stdout"), text) })
}

// exec runs ExecSync and fails the test on an RPC error.
func (e *ctrEnv) exec(t testing.TB, id string, timeout int64, cmd ...string) *runtimeapi.ExecSyncResponse {
	t.Helper()
	resp, err := e.d.Runtime.ExecSync(e.d.Ctx(t), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: timeout})
	if err != nil {
		t.Fatalf("ExecSync %q: %v", cmd, err)
	}
	return resp
}

// logLine is one CRI log record: 2016-10-06T00:17:09.669794202Z stdout F text
type logLine struct {
	Time   time.Time
	Stream string
	Tag    string
	Text   string
}

func readLog(t testing.TB, path string) []logLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("container log: %v", err)
	}
	defer f.Close()
	var out []logLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), " ", 4)
		if len(parts) < 3 {
			t.Fatalf("log line %q is not in the CRI format", sc.Text())
		}
		ts, err := time.Parse(time.RFC3339Nano, parts[0])
		if err != nil {
			t.Fatalf("log line %q: time: %v", sc.Text(), err)
		}
		l := logLine{Time: ts, Stream: parts[1], Tag: parts[2]}
		if len(parts) == 4 {
			l.Text = parts[3]
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// logText joins a log's records into what the container wrote to one
// stream (partial records continue the line).
func logText(lines []logLine, stream string) string {
	var b strings.Builder
	for _, l := range lines {
		if l.Stream != stream {
			continue
		}
		b.WriteString(l.Text)
		if l.Tag == "F" {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// wantCode checks that err is a gRPC status with code.
func wantCode(t testing.TB, what string, err error, code codes.Code) {
	t.Helper()
	if status.Code(err) != code {
		t.Errorf("%s: got %v, want %v", what, err, code)
	}
}
