package e2e

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/server"
	"github.com/berth-cri/berth/test/framework"
)

func TestVersionStatusRuntimeConfig(t *testing.T) {
	d := framework.StartDaemon(t, framework.Options{})
	ctx := d.Ctx(t)

	v, err := d.Runtime.Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if v.RuntimeName != "berth" || v.RuntimeApiVersion != "v1" || v.RuntimeVersion == "" {
		t.Errorf("Version = %+v, want runtime berth, API v1 and a version", v)
	}

	st, err := d.Runtime.Status(ctx, &runtimeapi.StatusRequest{Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	conds := map[string]*runtimeapi.RuntimeCondition{}
	for _, c := range st.Status.Conditions {
		conds[c.Type] = c
	}
	if c := conds[runtimeapi.RuntimeReady]; c == nil || !c.Status {
		t.Errorf("RuntimeReady = %v, want true", c)
	}
	// The test's CNI directory is empty: the network is not ready, and
	// kubelet needs this exact reason.
	if c := conds[runtimeapi.NetworkReady]; c == nil || c.Status || c.Reason != "NetworkPluginNotReady" {
		t.Errorf("NetworkReady = %v, want false with reason NetworkPluginNotReady", c)
	}
	if !strings.Contains(st.Info["config"], d.Root) {
		t.Errorf("verbose Status info does not carry the effective config: %q", st.Info["config"])
	}
	if !strings.Contains(st.Info["config"], `"pull_retries"`) {
		t.Errorf("verbose Status config is not keyed by the file's key names: %q", st.Info["config"])
	}
	// runc and crun on PATH are handlers of those names without any
	// config (the test's config names berth and runc only).
	if _, err := exec.LookPath("crun"); err == nil {
		found := false
		for _, h := range st.RuntimeHandlers {
			found = found || h.Name == "crun"
		}
		if !found {
			t.Errorf("crun is on PATH but not a runtime handler: %v", st.RuntimeHandlers)
		}
	}

	rc, err := d.Runtime.RuntimeConfig(ctx, &runtimeapi.RuntimeConfigRequest{})
	if err != nil {
		t.Fatal(err)
	}
	// The daemon is configured with the lane's driver (cgroupfs here,
	// systemd in the VM lane); RuntimeConfig must tell kubelet that one.
	want := runtimeapi.CgroupDriver_CGROUPFS
	if d.CgroupDriver == "systemd" {
		want = runtimeapi.CgroupDriver_SYSTEMD
	}
	if rc.GetLinux().GetCgroupDriver() != want {
		t.Errorf("cgroup driver = %v, want %v", rc.GetLinux().GetCgroupDriver(), want)
	}

	_, err = d.Runtime.UpdateRuntimeConfig(ctx, &runtimeapi.UpdateRuntimeConfigRequest{
		RuntimeConfig: &runtimeapi.RuntimeConfig{NetworkConfig: &runtimeapi.NetworkConfig{PodCidr: "not-a-cidr"}}})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("UpdateRuntimeConfig with a bad CIDR: %v, want InvalidArgument", err)
	}
	_, err = d.Runtime.UpdateRuntimeConfig(ctx, &runtimeapi.UpdateRuntimeConfigRequest{
		RuntimeConfig: &runtimeapi.RuntimeConfig{NetworkConfig: &runtimeapi.NetworkConfig{PodCidr: "10.88.0.0/16"}}})
	if err != nil {
		t.Errorf("UpdateRuntimeConfig: %v", err)
	}
}

func TestSocketIsPrivate(t *testing.T) {
	d := framework.StartDaemon(t, framework.Options{})
	fi, err := os.Stat(d.Socket)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("socket mode = %o, want 600", perm)
	}
}

func TestSIGTERMExitsCleanly(t *testing.T) {
	d := framework.StartDaemon(t, framework.Options{})
	if err := d.Stop(t); err != nil {
		t.Fatalf("berthd after SIGTERM: %v, want exit 0", err)
	}
	if _, err := os.Stat(d.Socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket still there after SIGTERM: %v", err)
	}
	// A stale socket file (left by a crash, say) is replaced on start.
	if err := os.WriteFile(d.Socket, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	d.Restart(t)
	if _, err := d.Runtime.Version(d.Ctx(t), &runtimeapi.VersionRequest{}); err != nil {
		t.Fatalf("Version after restart over a stale socket: %v", err)
	}
}

func TestSecondDaemonRefused(t *testing.T) {
	d := framework.StartDaemon(t, framework.Options{})
	out, err := d.Command().CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("second berthd: %v, want a non-zero exit\n%s", err, out)
	}
	if !strings.Contains(string(out), "in use by another berthd") {
		t.Errorf("second berthd's message does not say why: %s", out)
	}
	// The same socket with another root is refused too.
	other := t.TempDir()
	out, err = d.Command("--root", filepath.Join(other, "root"), "--runroot", filepath.Join(other, "run")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "socket") {
		t.Errorf("second berthd on the same socket, other roots: %v %s", err, out)
	}
	if _, err := d.Runtime.Version(d.Ctx(t), &runtimeapi.VersionRequest{}); err != nil {
		t.Fatalf("first berthd stopped serving: %v", err)
	}
}

func TestBadConfigRefused(t *testing.T) {
	framework.RequireRoot(t)
	bin := framework.BinDir(t)
	for _, tc := range []struct{ name, toml, want string }{
		{"typo", "[log]\nlevl = \"debug\"\n", "log.levl"},
		{"bad value", "[log]\nlevel = \"loud\"\n", "log.level"},
		{"bad handler", "[runtime]\ndefault = \"nope\"\n", "runtime.default"},
		{"syntax", "[log\n", "line 2"},
		{"relative debug socket", "[debug]\naddress = \"debug.sock\"\n", "debug.address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "berth.toml")
			if err := os.WriteFile(path, []byte(tc.toml), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(filepath.Join(bin, "berthd"), "--config", path, "config").CombinedOutput()
			if err == nil {
				t.Fatalf("berthd accepted %q", tc.toml)
			}
			if !strings.Contains(string(out), path) || !strings.Contains(string(out), tc.want) {
				t.Errorf("message %q does not name the file %s and %q", out, path, tc.want)
			}
		})
	}
	// A drop-in with a typo is named, not the main file.
	dir := t.TempDir()
	main := filepath.Join(dir, "berth.toml")
	os.WriteFile(main, []byte("[log]\nlevel = \"debug\"\n"), 0o644)
	os.Mkdir(main+".d", 0o755)
	dropin := filepath.Join(main+".d", "10-x.toml")
	os.WriteFile(dropin, []byte("[image]\ndriverr = \"vfs\"\n"), 0o644)
	out, err := exec.Command(filepath.Join(bin, "berthd"), "--config", main, "config").CombinedOutput()
	if err == nil || !strings.Contains(string(out), dropin) || !strings.Contains(string(out), "image.driverr") {
		t.Errorf("drop-in typo: %v %s", err, out)
	}
}

func TestConfigRoundTrips(t *testing.T) {
	framework.RequireRoot(t)
	bin := framework.BinDir(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "berth.toml")
	os.WriteFile(path, []byte("[pod]\nshm_size = 1048576\n"), 0o644)
	out, err := exec.Command(filepath.Join(bin, "berthd"), "--config", path, "config").Output()
	if err != nil {
		t.Fatal(err)
	}
	again := filepath.Join(dir, "again.toml")
	os.WriteFile(again, out, 0o644)
	out2, err := exec.Command(filepath.Join(bin, "berthd"), "--config", again, "config").CombinedOutput()
	if err != nil {
		t.Fatalf("berthd refuses its own config output: %v\n%s", err, out2)
	}
	if string(out) != string(out2) {
		t.Errorf("config does not round-trip:\n%s\n---\n%s", out, out2)
	}
	if !strings.Contains(string(out), "shm_size = 1048576") {
		t.Errorf("file value lost: %s", out)
	}
}

func TestPanickingHandlerAnswersInternal(t *testing.T) {
	d := framework.StartDaemon(t, framework.Options{Env: []string{server.PanicHookEnv + "=RuntimeConfig"}})
	ctx := d.Ctx(t)
	_, err := d.Runtime.RuntimeConfig(ctx, &runtimeapi.RuntimeConfigRequest{})
	if status.Code(err) != codes.Internal {
		t.Fatalf("panicking RuntimeConfig: %v, want Internal", err)
	}
	if _, err := d.Runtime.Version(ctx, &runtimeapi.VersionRequest{}); err != nil {
		t.Fatalf("berthd stopped serving after a panic: %v", err)
	}
}

func TestSIGHUPReloadsLogLevel(t *testing.T) {
	d := framework.StartDaemon(t, framework.Options{})
	ctx := d.Ctx(t)
	// The base config says debug: an RPC logs its request at debug.
	if _, err := d.Runtime.Version(ctx, &runtimeapi.VersionRequest{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(d.Log(), "level=debug") })
	// A drop-in turns it to warn.
	os.WriteFile(filepath.Join(d.Config+".d", "90-reload.toml"), []byte("[log]\nlevel = \"warn\"\n"), 0o644)
	syscall.Kill(d.PID(), syscall.SIGHUP)
	waitFor(t, func() bool { return strings.Contains(d.Log(), "reload: done") })
	// From now on: no debug line, however many RPCs; a warning still
	// shows (a refused request), and marks how far the log got.
	mark := len(d.Log())
	for range 5 {
		if _, err := d.Runtime.Version(ctx, &runtimeapi.VersionRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := d.Runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: "after-reload"})
	wantCode(t, "empty CreateContainer", err, codes.InvalidArgument)
	waitFor(t, func() bool { return strings.Contains(d.Log()[mark:], "level=warning") })
	if after := d.Log()[mark:]; strings.Contains(after, "level=debug") || strings.Contains(after, "level=info") {
		t.Fatalf("the log level did not change to warn; after the reload:\n%s", after)
	}

	// A bad file on reload is logged and the old config kept.
	os.WriteFile(filepath.Join(d.Config+".d", "91-bad.toml"), []byte("[log]\nlevel = 7\n"), 0o644)
	syscall.Kill(d.PID(), syscall.SIGHUP)
	waitFor(t, func() bool { return strings.Contains(d.Log(), "keeping the running config") })
	if _, err := d.Runtime.Version(d.Ctx(t), &runtimeapi.VersionRequest{}); err != nil {
		t.Fatal(err)
	}
}
