package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// newBridgeManager is a Manager on temporary roots with a CNI bridge
// network of its own (bridge deleted, cgroup parent removed at the end).
func newBridgeManager(tb testing.TB) *Manager {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root: creates namespaces, mounts, cgroups and veths")
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		tb.Skip("needs the CNI plugins in /usr/lib/cni")
	}
	dir := tb.TempDir()
	bridge := fmt.Sprintf("bbn%06x", rand.Uint32()&0xffffff)
	conf, _ := json.Marshal(map[string]any{
		"cniVersion": "1.0.0", "name": bridge,
		"plugins": []map[string]any{{
			"type": "bridge", "bridge": bridge, "isGateway": true,
			"ipam": map[string]any{
				"type": "host-local", "dataDir": filepath.Join(dir, "ipam"),
				"ranges": [][]map[string]string{{{"subnet": fmt.Sprintf("10.%d.%d.0/24", 100+rand.IntN(150), rand.IntN(256))}}},
			},
		}, {"type": "loopback"}},
	})
	confDir := filepath.Join(dir, "cni")
	os.MkdirAll(confDir, 0o755)
	os.WriteFile(filepath.Join(confDir, "10-bench.conflist"), conf, 0o644)
	cgParent := fmt.Sprintf("/berth-bench-%08x", rand.Uint32())
	m, err := New(context.Background(), Options{
		Root: filepath.Join(dir, "root"), RunRoot: filepath.Join(dir, "run"),
		CgroupParent: cgParent, ShmSize: 64 << 20, HostResolvConf: "/etc/resolv.conf",
		Network: NetworkOptions{ConfDir: confDir, PluginDirs: []string{"/usr/lib/cni"}, CacheDir: filepath.Join(dir, "cache")},
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		for _, sb := range m.List() {
			m.Remove(context.Background(), sb.ID, nil)
		}
		m.Close()
		exec.Command("ip", "link", "del", bridge).Run()
		dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", cgParent))
		for _, d := range dirs {
			os.Remove(d)
		}
	})
	return m
}

func benchPodConfig(i int) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: fmt.Sprintf("bench-%d", i), Namespace: "bench", Uid: fmt.Sprintf("uid-%d", i)},
		Hostname: fmt.Sprintf("bench-%d", i),
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
		}},
	}
}

// BenchmarkCreateBridgePod measures RunPodSandbox's work for a pod on a CNI
// bridge (cgroup, pins, shm, bridge+host-local+loopback ADD, files), with
// the number of live pods growing to b.N. Run with -benchtime=20x for the
// 20-pod figure. Removal is not timed (BenchmarkRemoveBridgePod is).
func BenchmarkCreateBridgePod(b *testing.B) {
	m := newBridgeManager(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := m.Create(ctx, CreateRequest{Config: benchPodConfig(i), RuntimeHandler: "runc"}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
}

// BenchmarkRemoveBridgePod measures RemovePodSandbox's work (CNI DEL,
// unpin, unmount, cgroup and files removed) for pods on a CNI bridge.
func BenchmarkRemoveBridgePod(b *testing.B) {
	m := newBridgeManager(b)
	ctx := context.Background()
	ids := make([]string, b.N)
	for i := range ids {
		sb, err := m.Create(ctx, CreateRequest{Config: benchPodConfig(i), RuntimeHandler: "runc"})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = sb.ID
	}
	b.ResetTimer()
	for _, id := range ids {
		if err := m.Remove(ctx, id, nil); err != nil {
			b.Fatal(err)
		}
	}
}
