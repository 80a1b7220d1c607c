package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/moby/sys/mountinfo"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/test/framework"
	"github.com/berth-cri/berth/test/launch"
)

// testNet is a CNI bridge network of the test's own: a unique bridge name,
// an unused 10.x subnet and host-local IPAM state under the test's temp
// dir, so leftovers (veths, IP allocations) can be checked and one test
// cannot see another's.
type testNet struct {
	Name    string
	Bridge  string
	Subnet  *net.IPNet
	IPAMDir string
}

// cniPluginDir is where Debian's containernetworking-plugins live.
const cniPluginDir = "/usr/lib/cni"

func requireCNIPlugins(t *testing.T) {
	t.Helper()
	for _, p := range []string{"bridge", "host-local", "portmap", "loopback"} {
		if _, err := os.Stat(filepath.Join(cniPluginDir, p)); err != nil {
			t.Skipf("CNI plugin %s not installed in %s (apt-get install containernetworking-plugins)", p, cniPluginDir)
		}
	}
}

// newTestNet picks a bridge name and a free subnet; the bridge is deleted
// when the test ends. extraPlugins are appended to the chain.
func newTestNet(t *testing.T) *testNet {
	t.Helper()
	requireCNIPlugins(t)
	n := &testNet{
		Bridge:  fmt.Sprintf("bth%06x", rand.Uint32()&0xffffff),
		IPAMDir: filepath.Join(t.TempDir(), "ipam"),
	}
	n.Name = "net-" + n.Bridge
	used := hostAddrs(t)
	for i := 0; ; i++ {
		if i == 100 {
			t.Fatal("no free 10.x.y.0/24 subnet found")
		}
		_, sn, _ := net.ParseCIDR(fmt.Sprintf("10.%d.%d.0/24", 100+rand.IntN(150), rand.IntN(256)))
		free := true
		for _, a := range used {
			if sn.Contains(a) {
				free = false
			}
		}
		if free {
			n.Subnet = sn
			break
		}
	}
	t.Cleanup(func() { exec.Command("ip", "link", "del", n.Bridge).Run() })
	return n
}

func hostAddrs(t *testing.T) []net.IP {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	var out []net.IP
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			out = append(out, ipn.IP)
		}
	}
	return out
}

// plugins returns the bridge chain: bridge with host-local IPAM, portmap
// (with SNAT so a host port answers on 127.0.0.1), loopback.
func (n *testNet) plugins() []map[string]any {
	return []map[string]any{
		{
			"type":        "bridge",
			"bridge":      n.Bridge,
			"isGateway":   true,
			"ipMasq":      false,
			"hairpinMode": true,
			"ipam": map[string]any{
				"type":    "host-local",
				"dataDir": n.IPAMDir,
				"ranges":  [][]map[string]string{{{"subnet": n.Subnet.String()}}},
				"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
			},
		},
		{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}, "snat": true},
		{"type": "loopback"},
	}
}

// write installs the network as dir/name with the given plugin chain.
func (n *testNet) write(t *testing.T, dir, name string, plugins []map[string]any) {
	t.Helper()
	b, err := json.MarshalIndent(map[string]any{"cniVersion": "1.0.0", "name": n.Name, "plugins": plugins}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// allocations lists the IPs host-local holds for this network.
func (n *testNet) allocations(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(n.IPAMDir, n.Name))
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if net.ParseIP(e.Name()) != nil {
			out = append(out, e.Name())
		}
	}
	return out
}

// ports lists the interfaces enslaved to the bridge (the pods' host-side
// veths).
func (n *testNet) ports(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("ip", "-o", "link", "show", "master", n.Bridge).CombinedOutput()
	if err != nil {
		return nil // no bridge, no ports
	}
	var ports []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(l); len(f) > 1 {
			ports = append(ports, strings.TrimSuffix(f[1], ":"))
		}
	}
	return ports
}

// podConfig is a minimal pod: own network, IPC, UTS; one PID namespace per
// container (so no infra process is needed).
func podConfig(name string) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{
			Name: name, Namespace: "e2e", Uid: fmt.Sprintf("uid-%08x", rand.Uint32()),
		},
		Hostname:     name,
		Labels:       map[string]string{"app": name, "suite": "sandbox"},
		Annotations:  map[string]string{"note": "e2e"},
		LogDirectory: "/var/log/pods/e2e",
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
			},
		},
	}
}

// runPod runs a pod and makes sure it is removed when the test ends.
func runPod(t *testing.T, d *framework.Daemon, cfg *runtimeapi.PodSandboxConfig) string {
	t.Helper()
	resp, err := d.Runtime.RunPodSandbox(d.Ctx(t), &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		t.Fatalf("RunPodSandbox %s: %v", cfg.Metadata.Name, err)
	}
	id := resp.PodSandboxId
	t.Cleanup(func() {
		ctx := context.Background()
		d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id})
		d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id})
	})
	return id
}

// podVerbose is the verbose status of a pod, decoded.
type podVerbose struct {
	Status *runtimeapi.PodSandboxStatus
	Info   struct {
		InfraPID       int               `json:"infraPid"`
		Namespaces     map[string]string `json:"namespaces"`
		CgroupParent   string            `json:"cgroupParent"`
		ResolvConfPath string            `json:"resolvConfPath"`
		HostsPath      string            `json:"hostsPath"`
		HostnamePath   string            `json:"hostnamePath"`
		ShmPath        string            `json:"shmPath"`
		CNIResult      json.RawMessage   `json:"cniResult"`
	}
}

func podStatus(t *testing.T, d *framework.Daemon, id string) *podVerbose {
	t.Helper()
	resp, err := d.Runtime.PodSandboxStatus(d.Ctx(t), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id, Verbose: true})
	if err != nil {
		t.Fatalf("PodSandboxStatus %s: %v", id, err)
	}
	v := &podVerbose{Status: resp.Status}
	if err := json.Unmarshal([]byte(resp.Info["info"]), &v.Info); err != nil {
		t.Fatalf("verbose info %q: %v", resp.Info["info"], err)
	}
	return v
}

// inNetNS runs fn on a thread inside the network namespace at path.
func inNetNS(t *testing.T, path string, fn func() error) {
	t.Helper()
	if err := ns.WithNetNSPath(path, func(ns.NetNS) error { return fn() }); err != nil {
		t.Fatalf("in netns %s: %v", path, err)
	}
}

// serveInNetNS listens on addr inside the network namespace at path (a
// socket stays in the namespace it was made in) and answers every
// connection with reply, until the test ends.
func serveInNetNS(t *testing.T, path, addr, reply string) {
	t.Helper()
	var ln net.Listener
	inNetNS(t, path, func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	})
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, reply)
			c.Close()
		}
	}()
}

// nsenter runs a command inside the given namespaces (flags like
// "--net=PATH") and returns its output.
func nsenter(t *testing.T, nsFlags []string, cmd ...string) string {
	t.Helper()
	out, err := exec.Command("nsenter", append(nsFlags, cmd...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("nsenter %v %v: %v\n%s", nsFlags, cmd, err, out)
	}
	return strings.TrimSpace(string(out))
}

// requireNothingLeft checks that no pod of d left anything behind: pins,
// mounts, pod directories, cgroups, veths, IP allocations.
func requireNothingLeft(t *testing.T, d *framework.Daemon, n *testNet) {
	t.Helper()
	mounts, err := mountinfo.GetMounts(func(m *mountinfo.Info) (skip, stop bool) {
		inNS := strings.HasPrefix(m.Mountpoint, filepath.Join(d.RunRoot, "ns")+"/")
		inPods := strings.HasPrefix(m.Mountpoint, filepath.Join(d.RunRoot, "pods")+"/")
		return !(inNS || inPods), false
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mounts {
		t.Errorf("mount left behind: %s (%s)", m.Mountpoint, m.FSType)
	}
	for _, dir := range []string{filepath.Join(d.Root, "pods"), filepath.Join(d.RunRoot, "pods"), filepath.Join(d.RunRoot, "ns")} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			t.Errorf("left behind: %s", filepath.Join(dir, e.Name()))
		}
	}
	for _, c := range launch.CgroupsLeft(d.CgroupParent, "pod-*") {
		t.Errorf("cgroup left behind: %s", c)
	}
	if n != nil {
		if p := n.ports(t); len(p) > 0 {
			t.Errorf("veths left on bridge %s: %v", n.Bridge, p)
		}
		if a := n.allocations(t); len(a) > 0 {
			t.Errorf("IPs still allocated in %s: %v", n.IPAMDir, a)
		}
	}
	// No berthd thread stays in a pod's namespaces (which would keep them
	// alive after unpinning).
	if pid := d.PID(); pid != 0 {
		for _, k := range []string{"net", "uts", "ipc"} {
			host, _ := os.Readlink("/proc/self/ns/" + k)
			tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/ns/%s", pid, k))
			for _, task := range tasks {
				if got, err := os.Readlink(task); err == nil && got != host {
					t.Errorf("berthd thread %s is in namespace %s, not the host's %s", task, got, host)
				}
			}
		}
	}
	list, err := d.Runtime.ListPodSandbox(d.Ctx(t), &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range list.Items {
		t.Errorf("pod still listed: %s %s", p.Id, p.Metadata.Name)
	}
}

// mountinfoUnder lists mount points under dir, in mountinfo order.
func mountinfoUnder(dir string) ([]string, error) {
	infos, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(infos))
	for _, m := range infos {
		out = append(out, m.Mountpoint)
	}
	return out, nil
}
