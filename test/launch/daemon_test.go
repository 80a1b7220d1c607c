package launch

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// newTestDaemon is a berthd of the prebuilt binaries (make build), which
// the launcher's own tests need as the e2e tests do.
func newTestDaemon(t *testing.T, o Options) *Daemon {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: berthd creates namespaces, mounts and cgroups")
	}
	bin := os.Getenv("BERTH_TEST_BINDIR")
	if bin == "" {
		t.Skip("BERTH_TEST_BINDIR (make build's bin/) is not set")
	}
	o.BinDir, o.Prefix = bin, "btl"
	d, err := New(o)
	if d != nil {
		t.Cleanup(func() { d.Shutdown(); d.Clean() })
	}
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Shutdown names each kind of leftover, and Clean removes them all with
// the directory: a pod berthd still runs, a mount under the directory, a
// process naming it, a cgroup below the parent, a veth on the bridge.
func TestShutdownFindsWhatIsLeft(t *testing.T) {
	d := newTestDaemon(t, Options{Network: Network{Name: "berthlt", Bridge: "berthlt0", Subnet: "10.93.0.0/16"}})
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pod, err := d.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "left", Namespace: "launch", Uid: "left-1"},
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}}},
	}})
	if err != nil {
		t.Fatalf("RunPodSandbox: %v\n%s", err, d.Log())
	}
	mnt := d.Path("leftmount")
	os.Mkdir(mnt, 0o755)
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(d.Path("marker"), nil, 0o644)
	follower := exec.Command("tail", "-f", d.Path("marker"))
	if err := follower.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { follower.Wait(); close(exited) }()
	cg := filepath.Join(cgroupRoot, "memory", d.CgroupParent, "leftcg")
	if err := os.MkdirAll(cg, 0o755); err != nil {
		t.Skipf("no cgroup v1 memory hierarchy to leave a cgroup in: %v", err)
	}
	if err := exec.Command("ip", "link", "add", "berthlt0", "type", "bridge").Run(); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("ip", "link", "add", "btlveth0", "master", "berthlt0", "type", "veth", "peer", "name", "btlveth1").Run(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command("ip", "link", "del", "btlveth0").Run() })

	left := strings.Join(d.Shutdown(), "\n")
	for _, want := range []string{
		"pod " + pod.PodSandboxId[:12] + " (left) SANDBOX_READY",
		"mount " + mnt,
		"(tail)",
		"cgroup " + cg,
		"veth btlveth0 on berthlt0",
	} {
		if !strings.Contains(left, want) {
			t.Errorf("Shutdown did not name %q; it listed:\n%s", want, left)
		}
	}
	if strings.Contains(left, "did not stop cleanly") {
		t.Errorf("a clean SIGTERM stop was reported:\n%s", left)
	}
	if err := d.Clean(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d.Dir); !os.IsNotExist(err) {
		t.Errorf("%s still there after Clean: %v", d.Dir, err)
	}
	if _, err := os.Stat("/sys/class/net/berthlt0"); !os.IsNotExist(err) {
		t.Errorf("bridge still there after Clean: %v", err)
	}
	if _, err := os.Stat(cg); !os.IsNotExist(err) {
		t.Errorf("cgroup still there after Clean: %v", err)
	}
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Errorf("process %d naming the directory still runs after Clean", follower.Process.Pid)
		follower.Process.Kill()
	}
}

// A stopped or killed berthd starts again on the same roots, the clients
// reconnect, and its log keeps both runs; nothing is left after a clean
// run.
func TestRestartKeepsClientsAndLog(t *testing.T) {
	d := newTestDaemon(t, Options{})
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err == nil {
		t.Error("a second Start while berthd runs succeeded")
	}
	first := d.PID()
	if err := d.Kill(); err != nil && !strings.Contains(err.Error(), "killed") {
		t.Fatalf("Kill: %v", err)
	}
	if d.PID() != 0 {
		t.Fatal("PID after Kill is not 0")
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	if d.PID() == first {
		t.Fatal("same pid after a restart")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := d.Runtime.Version(ctx, &runtimeapi.VersionRequest{}); err != nil {
		t.Fatalf("client after restart: %v", err)
	}
	if n := strings.Count(d.Log(), "berthd serving"); n != 2 {
		t.Errorf("log has %d starts, want 2:\n%s", n, d.Log())
	}
	if left := d.Shutdown(); len(left) > 0 {
		t.Errorf("left behind by a clean run: %v", left)
	}
}
