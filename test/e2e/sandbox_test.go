package e2e

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/test/framework"
	"github.com/berth-cri/berth/test/launch"
)

// startPodNet starts berthd with the test's own CNI bridge network
// installed in its config directory.
func startPodNet(t *testing.T, opts framework.Options) (*framework.Daemon, *testNet) {
	t.Helper()
	n := newTestNet(t)
	d := framework.StartDaemon(t, opts)
	n.write(t, d.CNIConfDir, "10-test.conflist", n.plugins())
	return d, n
}

// An absolute hostname (a final "."), as the kubelet sends for a pod
// with setHostnameAsFQDN on a node with no cluster domain, is the pod's
// hostname as given (the node e2e suite's "Hostname of Pod" spec).
func TestPodAbsoluteFQDNHostname(t *testing.T) {
	d, _ := startPodNet(t, framework.Options{})
	cfg := podConfig("fqdn-1")
	cfg.Hostname = "fqdn-1.t.hostfqdn-1.svc."
	id := runPod(t, d, cfg)
	st := podStatus(t, d, id)
	if h := nsenter(t, []string{"--uts=" + st.Info.Namespaces["uts"]}, "hostname"); h != cfg.Hostname {
		t.Errorf("hostname in the pod's UTS namespace = %q, want %q", h, cfg.Hostname)
	}
	if b, _ := os.ReadFile(st.Info.HostnamePath); string(b) != cfg.Hostname+"\n" {
		t.Errorf("hostname file = %q", b)
	}
}

// A pod gets an IP on the bridge, its hostname, DNS config and sysctls
// land in its namespaces and files, and Stop then Remove give everything
// back.
func TestPodNetworkFilesAndTeardown(t *testing.T) {
	d, n := startPodNet(t, framework.Options{})
	ctx := d.Ctx(t)

	cfg := podConfig("web-1")
	cfg.DnsConfig = &runtimeapi.DNSConfig{
		Servers:  []string{"10.96.0.10", "fd00::a"},
		Searches: []string{"e2e.svc.cluster.local", "svc.cluster.local"},
		Options:  []string{"ndots:5", "timeout:2"},
	}
	cfg.Linux.Sysctls = map[string]string{"net.core.somaxconn": "777", "kernel.shmmni": "2048"}
	id := runPod(t, d, cfg)
	if len(id) != 64 {
		t.Errorf("pod id %q is not 64 hex characters", id)
	}

	st := podStatus(t, d, id)
	if st.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Errorf("state = %v, want READY", st.Status.State)
	}
	ip := net.ParseIP(st.Status.GetNetwork().GetIp())
	if ip == nil || !n.Subnet.Contains(ip) {
		t.Fatalf("pod IP %q is not in the network's subnet %s", st.Status.GetNetwork().GetIp(), n.Subnet)
	}
	if got := n.allocations(t); len(got) != 1 || got[0] != ip.String() {
		t.Errorf("host-local allocations = %v, want [%s]", got, ip)
	}
	if len(n.ports(t)) != 1 {
		t.Errorf("bridge ports = %v, want one veth", n.ports(t))
	}
	if st.Status.Metadata.Name != "web-1" || st.Status.Labels["app"] != "web-1" || st.Status.Annotations["note"] != "e2e" {
		t.Errorf("status metadata/labels/annotations = %v %v %v", st.Status.Metadata, st.Status.Labels, st.Status.Annotations)
	}
	if st.Status.RuntimeHandler == "" {
		t.Error("status has no runtime handler")
	}
	if st.Status.GetLinux().GetNamespaces().GetOptions().GetPid() != runtimeapi.NamespaceMode_CONTAINER {
		t.Errorf("status namespace options = %v", st.Status.GetLinux().GetNamespaces().GetOptions())
	}
	if len(st.Info.CNIResult) == 0 {
		t.Error("verbose info has no CNI result")
	}

	netns, uts, ipc := st.Info.Namespaces["network"], st.Info.Namespaces["uts"], st.Info.Namespaces["ipc"]
	for _, p := range []string{netns, uts, ipc} {
		var fs unix.Statfs_t
		if err := unix.Statfs(p, &fs); err != nil || fs.Type != unix.NSFS_MAGIC {
			t.Fatalf("namespace pin %q is not a pinned namespace (%v)", p, err)
		}
	}
	// Inside the pod's namespaces: its hostname, its address on eth0, lo
	// up, the sysctls.
	if h := nsenter(t, []string{"--uts=" + uts}, "hostname"); h != "web-1" {
		t.Errorf("hostname in the pod's UTS namespace = %q, want web-1", h)
	}
	if out := nsenter(t, []string{"--net=" + netns}, "ip", "-o", "addr", "show", "eth0"); !strings.Contains(out, ip.String()+"/") {
		t.Errorf("eth0 in the pod does not carry %s: %s", ip, out)
	}
	if out := nsenter(t, []string{"--net=" + netns}, "ip", "-o", "link", "show", "lo"); !strings.Contains(out, "UP") {
		t.Errorf("lo is not up in the pod: %s", out)
	}
	if v := nsenter(t, []string{"--net=" + netns}, "cat", "/proc/sys/net/core/somaxconn"); v != "777" {
		t.Errorf("net.core.somaxconn in the pod = %q, want 777", v)
	}
	if v := nsenter(t, []string{"--ipc=" + ipc}, "cat", "/proc/sys/kernel/shmmni"); v != "2048" {
		t.Errorf("kernel.shmmni in the pod = %q, want 2048", v)
	}
	if host, _ := os.ReadFile("/proc/sys/net/core/somaxconn"); strings.TrimSpace(string(host)) == "777" {
		t.Error("the pod's sysctl changed the host's")
	}

	// The pod's files.
	wantResolv := "search e2e.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\nnameserver fd00::a\noptions ndots:5 timeout:2\n"
	if b, _ := os.ReadFile(st.Info.ResolvConfPath); string(b) != wantResolv {
		t.Errorf("resolv.conf = %q, want %q", b, wantResolv)
	}
	if b, _ := os.ReadFile(st.Info.HostnamePath); string(b) != "web-1\n" {
		t.Errorf("hostname file = %q", b)
	}
	hosts, _ := os.ReadFile(st.Info.HostsPath)
	if !strings.Contains(string(hosts), "127.0.0.1\tlocalhost") || !strings.Contains(string(hosts), ip.String()+"\tweb-1") {
		t.Errorf("hosts file lacks localhost or %s web-1:\n%s", ip, hosts)
	}
	var shm unix.Statfs_t
	if err := unix.Statfs(st.Info.ShmPath, &shm); err != nil || shm.Type != unix.TMPFS_MAGIC {
		t.Errorf("shm %q is not a tmpfs (%v)", st.Info.ShmPath, err)
	} else if size := int64(shm.Blocks) * shm.Bsize; size != 64<<20 {
		t.Errorf("shm size = %d, want 64 MiB", size)
	}
	var cgroupDirs []string
	for _, dir := range cgroupfsDirs(st.Info.CgroupParent) {
		if _, err := os.Stat(dir); err == nil {
			cgroupDirs = append(cgroupDirs, dir)
		}
	}
	if !strings.HasPrefix(st.Info.CgroupParent, d.CgroupParent+"/pod-") || len(cgroupDirs) == 0 {
		t.Errorf("pod cgroup %q: want under %s, created (found %v)", st.Info.CgroupParent, d.CgroupParent, cgroupDirs)
	}

	// List: by id prefix, state and labels.
	list := func(f *runtimeapi.PodSandboxFilter) []*runtimeapi.PodSandbox {
		resp, err := d.Runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: f})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Items
	}
	if got := list(nil); len(got) != 1 || got[0].Id != id || got[0].State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Errorf("ListPodSandbox = %v", got)
	}
	if got := list(&runtimeapi.PodSandboxFilter{Id: id[:8]}); len(got) != 1 {
		t.Errorf("ListPodSandbox by id prefix = %v", got)
	}
	if got := list(&runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"app": "other"}}); len(got) != 0 {
		t.Errorf("ListPodSandbox by a label nobody has = %v", got)
	}
	if got := list(&runtimeapi.PodSandboxFilter{State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_NOTREADY}}); len(got) != 0 {
		t.Errorf("ListPodSandbox NOTREADY = %v", got)
	}
	// Status by unique prefix; unknown ids are NotFound.
	if _, err := d.Runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id[:12]}); err != nil {
		t.Errorf("PodSandboxStatus by prefix: %v", err)
	}
	if _, err := d.Runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: strings.Repeat("0", 64)}); status.Code(err) != codes.NotFound {
		t.Errorf("PodSandboxStatus of an unknown id: %v, want NotFound", err)
	}

	// Stop: IP released, veth gone, namespaces unpinned; twice is fine.
	for range 2 {
		if _, err := d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Fatalf("StopPodSandbox: %v", err)
		}
	}
	if a := n.allocations(t); len(a) != 0 {
		t.Errorf("IPs still allocated after stop: %v", a)
	}
	if p := n.ports(t); len(p) != 0 {
		t.Errorf("veths still on the bridge after stop: %v", p)
	}
	if _, err := os.Stat(netns); err == nil {
		t.Errorf("netns pin %s still there after stop", netns)
	}
	st = podStatus(t, d, id)
	if st.Status.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY || st.Status.GetNetwork().GetIp() != "" {
		t.Errorf("after stop: state %v ip %q, want NOTREADY and no IP", st.Status.State, st.Status.GetNetwork().GetIp())
	}

	// Remove: everything goes; twice is fine; the name is free again.
	for range 2 {
		if _, err := d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Fatalf("RemovePodSandbox: %v", err)
		}
	}
	if _, err := d.Runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id}); status.Code(err) != codes.NotFound {
		t.Errorf("PodSandboxStatus after remove: %v, want NotFound", err)
	}
	requireNothingLeft(t, d, n)
}

// Two pods on the bridge reach each other by pod IP.
func TestPodsReachEachOther(t *testing.T) {
	d, _ := startPodNet(t, framework.Options{})
	a := podStatus(t, d, runPod(t, d, podConfig("pod-a")))
	b := podStatus(t, d, runPod(t, d, podConfig("pod-b")))
	if a.Status.Network.Ip == b.Status.Network.Ip {
		t.Fatalf("both pods got %s", a.Status.Network.Ip)
	}

	// A listener in pod b's network namespace (a socket stays in the
	// namespace it was made in), a client in pod a's.
	serveInNetNS(t, b.Info.Namespaces["network"], ":8080", fmt.Sprintf("hello from %s\n", b.Status.Network.Ip))
	var got string
	inNetNS(t, a.Info.Namespaces["network"], func() error {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(b.Status.Network.Ip, "8080"), 10*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		got = line
		return err
	})
	if want := "hello from " + b.Status.Network.Ip + "\n"; got != want {
		t.Errorf("pod a read %q from pod b, want %q", got, want)
	}
	// And ICMP the other way, with the busybox ping.
	if _, err := exec.LookPath("busybox"); err == nil {
		nsenter(t, []string{"--net=" + b.Info.Namespaces["network"]}, "busybox", "ping", "-c", "1", "-W", "5", a.Status.Network.Ip)
	}
}

// A host-network pod gets no network namespace, no CNI attachment and the
// host's hostname and hosts file; its IPC namespace is still its own.
func TestHostNetworkPod(t *testing.T) {
	d, n := startPodNet(t, framework.Options{})
	cfg := podConfig("hostnet")
	cfg.Hostname = ""
	cfg.Linux.SecurityContext.NamespaceOptions.Network = runtimeapi.NamespaceMode_NODE
	id := runPod(t, d, cfg)
	st := podStatus(t, d, id)
	if st.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Fatalf("state = %v", st.Status.State)
	}
	if ip := st.Status.GetNetwork().GetIp(); ip != "" {
		t.Errorf("host-network pod has pod IP %q", ip)
	}
	if _, ok := st.Info.Namespaces["network"]; ok {
		t.Errorf("host-network pod has a network namespace: %v", st.Info.Namespaces)
	}
	if _, ok := st.Info.Namespaces["uts"]; ok {
		t.Errorf("host-network pod has a UTS namespace of its own: %v", st.Info.Namespaces)
	}
	if _, ok := st.Info.Namespaces["ipc"]; !ok {
		t.Errorf("host-network pod has no IPC namespace of its own: %v", st.Info.Namespaces)
	}
	if a := n.allocations(t); len(a) != 0 {
		t.Errorf("CNI ran for a host-network pod: allocations %v", a)
	}
	host, _ := os.Hostname()
	if b, _ := os.ReadFile(st.Info.HostnamePath); string(b) != host+"\n" {
		t.Errorf("hostname file = %q, want the host's %q", b, host)
	}
	hostHosts, _ := os.ReadFile("/etc/hosts")
	if b, _ := os.ReadFile(st.Info.HostsPath); string(b) != string(hostHosts) {
		t.Errorf("hosts file is not the host's:\n%s", b)
	}
	// With no DNS config the pod gets the host's resolv.conf.
	hostResolv, _ := os.ReadFile("/etc/resolv.conf")
	if b, _ := os.ReadFile(st.Info.ResolvConfPath); string(b) != string(hostResolv) {
		t.Errorf("resolv.conf is not the host's:\n%s", b)
	}
	// A net.* sysctl would change the host's network: refused.
	bad := podConfig("hostnet-sysctl")
	bad.Linux.SecurityContext.NamespaceOptions.Network = runtimeapi.NamespaceMode_NODE
	bad.Linux.Sysctls = map[string]string{"net.core.somaxconn": "1"}
	if _, err := d.Runtime.RunPodSandbox(d.Ctx(t), &runtimeapi.RunPodSandboxRequest{Config: bad}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("host-network pod with a net sysctl: %v, want InvalidArgument", err)
	}
}

// A hostPort mapping (portmap plugin, portMappings capability) answers on
// 127.0.0.1.
func TestHostPortOnLoopback(t *testing.T) {
	d, _ := startPodNet(t, framework.Options{})
	hostPort := int32(30000 + rand.IntN(2000))
	cfg := podConfig("hostport")
	cfg.PortMappings = []*runtimeapi.PortMapping{
		{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 80, HostPort: hostPort},
		{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 9090}, // no host port: nothing to map
	}
	id := runPod(t, d, cfg)
	st := podStatus(t, d, id)

	serveInNetNS(t, st.Info.Namespaces["network"], ":80", "pod answers\n")
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", hostPort), 10*time.Second)
	if err != nil {
		t.Fatalf("dial the host port on 127.0.0.1: %v", err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if line != "pod answers\n" {
		t.Errorf("read %q (%v) from 127.0.0.1:%d, want the pod's answer", line, err, hostPort)
	}

	// Stop removes the mapping's iptables rules.
	if _, err := d.Runtime.StopPodSandbox(d.Ctx(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("iptables", "-t", "nat", "-S").CombinedOutput()
	if strings.Contains(string(out), fmt.Sprintf("--dport %d ", hostPort)) {
		t.Errorf("iptables still maps port %d after stop:\n%s", hostPort, out)
	}
}

// Twenty pods run (four at a time) and removed leave no namespace, veth,
// mount, cgroup or IP allocation behind.
func TestManyPodsLeaveNothing(t *testing.T) {
	d, n := startPodNet(t, framework.Options{})
	ctx := d.Ctx(t)
	const pods = 20
	ids := make([]string, pods)
	ips := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			resp, err := d.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podConfig(fmt.Sprintf("loop-%d", i))})
			if err != nil {
				t.Errorf("RunPodSandbox %d: %v", i, err)
				return
			}
			st, err := d.Runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: resp.PodSandboxId})
			if err != nil {
				t.Errorf("PodSandboxStatus %d: %v", i, err)
				return
			}
			mu.Lock()
			ids[i] = resp.PodSandboxId
			ips[st.Status.GetNetwork().GetIp()] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if len(ips) != pods || ips[""] {
		t.Errorf("%d pods got %d distinct IPs: %v", pods, len(ips), ips)
	}
	if a := n.allocations(t); len(a) != pods {
		t.Errorf("host-local holds %d IPs, want %d", len(a), pods)
	}
	for _, id := range ids {
		// Remove without Stop: Remove stops what is still running.
		if _, err := d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Errorf("RemovePodSandbox: %v", err)
		}
	}
	requireNothingLeft(t, d, n)
}

// A CNI config whose chain fails halfway makes RunPodSandbox fail and
// leave nothing: no pin, no mount, no veth, no IP held, no cgroup, no pod.
func TestBrokenCNIConfigFailsCleanly(t *testing.T) {
	n := newTestNet(t)
	d := framework.StartDaemon(t, framework.Options{})
	ctx := d.Ctx(t)

	// The bridge plugin succeeds (veth made, IP allocated); then tuning
	// fails on a sysctl that does not exist.
	plugins := n.plugins()[:1]
	plugins = append(plugins, map[string]any{"type": "tuning", "sysctl": map[string]string{"net.ipv4.conf.eth0.no_such_sysctl": "1"}})
	n.write(t, d.CNIConfDir, "10-broken.conflist", plugins)
	_, err := d.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podConfig("broken")})
	if err == nil {
		t.Fatal("RunPodSandbox succeeded with a failing CNI chain")
	}
	if !strings.Contains(err.Error(), "tuning") {
		t.Errorf("error does not name the failing plugin: %v", err)
	}
	requireNothingLeft(t, d, n)

	// A config that does not parse: the network is not ready, the reason
	// names the file, and RunPodSandbox fails before making anything.
	os.Remove(filepath.Join(d.CNIConfDir, "10-broken.conflist"))
	os.WriteFile(filepath.Join(d.CNIConfDir, "05-garbage.conflist"), []byte("{not json"), 0o644)
	st, err := d.Runtime.Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range st.Status.Conditions {
		if c.Type == runtimeapi.NetworkReady && (c.Status || !strings.Contains(c.Message, "05-garbage.conflist")) {
			t.Errorf("NetworkReady = %v, want false naming 05-garbage.conflist", c)
		}
	}
	_, err = d.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podConfig("garbage")})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("RunPodSandbox with no valid network: %v, want FailedPrecondition", err)
	}
	requireNothingLeft(t, d, n)

	// A valid config after the garbage in lexical order is used.
	n.write(t, d.CNIConfDir, "10-good.conflist", n.plugins())
	st, err = d.Runtime.Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range st.Status.Conditions {
		if c.Type == runtimeapi.NetworkReady && !c.Status {
			t.Errorf("NetworkReady = %v with a valid config present", c)
		}
	}
	runPod(t, d, podConfig("good"))
}

// Requests that cannot make a sane pod are InvalidArgument, and make nothing.
func TestRunPodSandboxRejectsBadConfig(t *testing.T) {
	d, n := startPodNet(t, framework.Options{})
	ctx := d.Ctx(t)
	cases := map[string]func(*runtimeapi.PodSandboxConfig){
		"no metadata name": func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Name = "" },
		"name with ;":      func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Name = "a;b" },
		"bad hostname":     func(c *runtimeapi.PodSandboxConfig) { c.Hostname = "-bad host" },
		"host sysctl":      func(c *runtimeapi.PodSandboxConfig) { c.Linux.Sysctls = map[string]string{"kernel.panic": "1"} },
		"sysctl escaping": func(c *runtimeapi.PodSandboxConfig) {
			c.Linux.Sysctls = map[string]string{"net/../../kernel/panic": "1"}
		},
		"relative cgroup": func(c *runtimeapi.PodSandboxConfig) { c.Linux.CgroupParent = "kubepods/../x" },
		"dns server not an IP": func(c *runtimeapi.PodSandboxConfig) {
			c.DnsConfig = &runtimeapi.DNSConfig{Servers: []string{"dns\nnameserver 1.1.1.1"}}
		},
		"bad bandwidth": func(c *runtimeapi.PodSandboxConfig) { c.Annotations["kubernetes.io/ingress-bandwidth"] = "lots" },
		"host port out of range": func(c *runtimeapi.PodSandboxConfig) {
			c.PortMappings = []*runtimeapi.PortMapping{{HostPort: 70000, ContainerPort: 80}}
		},
	}
	for name, mutate := range cases {
		cfg := podConfig("bad")
		mutate(cfg)
		_, err := d.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: %v, want InvalidArgument", name, err)
		}
	}
	_, err := d.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podConfig("x"), RuntimeHandler: "no-such-handler"})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "no-such-handler") {
		t.Errorf("unknown runtime handler: %v, want InvalidArgument naming it", err)
	}
	// Stop and Remove of unknown pods succeed, as kubelet expects.
	unknown := strings.Repeat("ab", 32)
	if _, err := d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: unknown}); err != nil {
		t.Errorf("StopPodSandbox of an unknown id: %v", err)
	}
	if _, err := d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: unknown}); err != nil {
		t.Errorf("RemovePodSandbox of an unknown id: %v", err)
	}
	requireNothingLeft(t, d, n)
}

// slowPlugin installs a CNI plugin "slow" in a plugin dir of its own: ADD
// touches marker, sleeps, and answers an empty result; DEL does nothing.
// It returns the TOML that adds the dir to berthd's plugin dirs.
func slowPlugin(t *testing.T, marker string, sleep time.Duration) string {
	t.Helper()
	dir := t.TempDir()
	script := fmt.Sprintf(`#!/bin/sh
case "$CNI_COMMAND" in
ADD) touch %q; sleep %d; echo '{"cniVersion":"1.0.0"}' ;;
VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}' ;;
esac
`, marker, int(sleep.Seconds()))
	if err := os.WriteFile(filepath.Join(dir, "slow"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("[network]\nplugin_dirs = [%q, %q]\n", dir, cniPluginDir)
}

// Two pods with the same name key: AlreadyExists naming the first. But a
// kubelet retry while the first RunPodSandbox is still working waits for
// it and gets the same pod.
func TestRunPodSandboxRetryWaitsForTheFirstCall(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "add-started")
	n := newTestNet(t)
	d := framework.StartDaemon(t, framework.Options{ConfigTOML: slowPlugin(t, marker, 3*time.Second)})
	n.write(t, d.CNIConfDir, "10-slow.conflist", append(n.plugins()[:1], map[string]any{"type": "slow"}))
	cfg := podConfig("retried")

	// kubelet's first call gives up after a second; the work goes on.
	short, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := d.Runtime.RunPodSandbox(short, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("first call: %v, want DeadlineExceeded (the plugin sleeps)", err)
	}
	// The retry, while the first is still in the slow plugin.
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the first call is not in the CNI plugin: %v", err)
	}
	resp, err := d.Runtime.RunPodSandbox(d.Ctx(t), &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		t.Fatalf("retry: %v (want it to wait for the first call and return its pod)", err)
	}
	id := resp.PodSandboxId
	t.Cleanup(func() {
		d.Runtime.RemovePodSandbox(context.Background(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id})
	})
	list, err := d.Runtime.ListPodSandbox(d.Ctx(t), &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].Id != id {
		t.Errorf("after a retry, pods = %v, want just %s", list.Items, id)
	}
	// Once the first call is done, the same name is AlreadyExists.
	_, err = d.Runtime.RunPodSandbox(d.Ctx(t), &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if status.Code(err) != codes.AlreadyExists || !strings.Contains(err.Error(), id) {
		t.Errorf("same name again: %v, want AlreadyExists naming %s", err, id)
	}
	// A new attempt is a new name.
	cfg2 := podConfig("retried")
	cfg2.Metadata.Uid, cfg2.Metadata.Attempt = cfg.Metadata.Uid, 1
	runPod(t, d, cfg2)
}

// berthd killed in the middle of a RunPodSandbox (inside CNI ADD, after
// the bridge plugin took an IP) tears the half-made pod down when it
// starts again.
func TestCrashDuringRunPodSandboxIsCleanedUp(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "add-started")
	n := newTestNet(t)
	d := framework.StartDaemon(t, framework.Options{ConfigTOML: slowPlugin(t, marker, 5*time.Second)})
	n.write(t, d.CNIConfDir, "10-slow.conflist", append(n.plugins()[:1], map[string]any{"type": "slow"}))

	errc := make(chan error, 1)
	go func() {
		_, err := d.Runtime.RunPodSandbox(d.Ctx(t), &runtimeapi.RunPodSandboxRequest{Config: podConfig("crashed")})
		errc <- err
	}()
	waitFor(t, func() bool { _, err := os.Stat(marker); return err == nil })
	if len(n.allocations(t)) != 1 || len(n.ports(t)) != 1 {
		t.Fatalf("bridge plugin did not run before the slow one: allocations %v ports %v", n.allocations(t), n.ports(t))
	}
	d.Kill(t)
	if err := <-errc; err == nil {
		t.Fatal("RunPodSandbox succeeded although berthd was killed")
	}
	d.Restart(t)
	requireNothingLeft(t, d, n)
}

// A pod outlives a berthd crash: after a restart it is still READY with
// the same IP, and stop and remove (CNI DEL from the saved config, even
// with the config dir emptied) clean everything.
func TestPodSurvivesRestart(t *testing.T) {
	d, n := startPodNet(t, framework.Options{})
	id := runPod(t, d, podConfig("survivor"))
	before := podStatus(t, d, id)

	d.Kill(t)
	d.Restart(t)
	after := podStatus(t, d, id)
	if after.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY || after.Status.Network.Ip != before.Status.Network.Ip {
		t.Errorf("after restart: %v %s, want READY with IP %s", after.Status.State, after.Status.Network.Ip, before.Status.Network.Ip)
	}
	if after.Info.Namespaces["network"] != before.Info.Namespaces["network"] {
		t.Errorf("netns changed across restart: %v -> %v", before.Info.Namespaces, after.Info.Namespaces)
	}

	// The config dir no longer has the network: DEL uses the saved one.
	os.Remove(filepath.Join(d.CNIConfDir, "10-test.conflist"))
	ctx := d.Ctx(t)
	if _, err := d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Fatal(err)
	}
	requireNothingLeft(t, d, n)

	// A clean stop with no pods leaves no mount under the run root.
	if err := d.Stop(t); err != nil {
		t.Fatal(err)
	}
	if mounts, _ := mountinfoUnder(d.RunRoot); len(mounts) > 0 {
		t.Errorf("berthd stopped with no pods but left mounts: %v", mounts)
	}
	d.Restart(t)
}

// After a reboot the run root is empty: pods are still listed, NOTREADY,
// their IPs released, until removed.
func TestRebootLeavesPodsNotReady(t *testing.T) {
	d, n := startPodNet(t, framework.Options{})
	id := runPod(t, d, podConfig("rebooted"))
	d.Kill(t)
	// What a reboot does to the run root: every mount gone, then the
	// tmpfs empty.
	mounts, _ := mountinfoUnder(d.RunRoot)
	for i := len(mounts) - 1; i >= 0; i-- {
		if err := unix.Unmount(mounts[i], unix.MNT_DETACH); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.RemoveAll(d.RunRoot); err != nil {
		t.Fatal(err)
	}
	d.Restart(t)
	st := podStatus(t, d, id)
	if st.Status.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY || st.Status.GetNetwork().GetIp() != "" {
		t.Errorf("after reboot: state %v ip %q, want NOTREADY with no IP", st.Status.State, st.Status.GetNetwork().GetIp())
	}
	if a := n.allocations(t); len(a) != 0 {
		t.Errorf("IPs still allocated after reboot: %v", a)
	}
	if _, err := d.Runtime.RemovePodSandbox(d.Ctx(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Fatal(err)
	}
	requireNothingLeft(t, d, n)
}

// A shared PID namespace (POD mode) runs the infra process as the pod's
// PID 1.
func TestSharedPIDNamespaceInfra(t *testing.T) {
	d, n := startPodNet(t, framework.Options{})
	cfg := podConfig("shared-pid")
	cfg.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	resp, err := d.Runtime.RunPodSandbox(d.Ctx(t), &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	id := resp.PodSandboxId
	t.Cleanup(func() {
		d.Runtime.RemovePodSandbox(context.Background(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id})
	})
	st := podStatus(t, d, id)
	if st.Info.InfraPID == 0 || st.Info.Namespaces["pid"] == "" {
		t.Fatalf("shared-PID pod has no infra pid or PID namespace: %+v", st.Info)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", st.Info.InfraPID))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == "NSpid:" && f[len(f)-1] != "1" {
			t.Errorf("infra is pid %s in its PID namespace, want 1 (%s)", f[len(f)-1], l)
		}
	}
	if _, err := d.Runtime.RemovePodSandbox(d.Ctx(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", st.Info.InfraPID)); err == nil {
		t.Errorf("infra pid %d still running after remove", st.Info.InfraPID)
	}
	requireNothingLeft(t, d, n)
}

// A cgroup parent kubelet made stays when the pod goes; one Berth made
// goes with it.
func TestPodCgroupParent(t *testing.T) {
	if framework.CgroupDriver(framework.Options{}) == "systemd" {
		t.Skip("cgroupfs parents; with the systemd driver kubelet's slices are TestSystemdKubeletSlice's")
	}
	if _, err := os.Stat("/sys/fs/cgroup/memory/cgroup.procs"); err != nil {
		t.Skip("makes kubelet's cgroup in the v1 memory and pids hierarchies; this node has none (cgroup v2)")
	}
	d, n := startPodNet(t, framework.Options{})
	ctx := d.Ctx(t)
	// kubepods is the test's, as a node's is its kubelet's: removed when
	// the test ends (before the daemon's teardown counts what is left
	// below its cgroup parent), in every hierarchy, since the pods'
	// parents were made in those the test did not make it in.
	t.Cleanup(func() { removeCgroupTree(d.CgroupParent + "/kubepods") })
	kubeletMade := d.CgroupParent + "/kubepods/podkubelet"
	for _, dir := range cgroupfsDirs(kubeletMade) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Skipf("cannot make the cgroup %s: %v", dir, err)
		}
	}
	ours := d.CgroupParent + "/kubepods/podberth"
	for _, parent := range []string{kubeletMade, ours} {
		cfg := podConfig("cg")
		cfg.Linux.CgroupParent = parent
		id := runPod(t, d, cfg)
		if got := podStatus(t, d, id).Info.CgroupParent; got != parent {
			t.Errorf("cgroup parent = %q, want %q", got, parent)
		}
		if _, err := os.Stat(cgroupfsDirs(parent)[0]); err != nil {
			t.Errorf("pod cgroup %s not there: %v", parent, err)
		}
		if _, err := d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(cgroupfsDirs(kubeletMade)[0]); err != nil {
		t.Errorf("the kubelet-made cgroup was removed with the pod: %v", err)
	}
	if _, err := os.Stat(cgroupfsDirs(ours)[0]); err == nil {
		t.Errorf("the Berth-made cgroup %s outlived its pod", ours)
	}
	requireNothingLeft(t, d, n)
}

// removeCgroupTree removes a cgroupfs path and what is below it in every
// hierarchy, deepest first; rmdir refuses a cgroup that still has
// processes, so nothing running is touched.
func removeCgroupTree(path string) {
	for _, top := range launch.CgroupsLeft(path, "") {
		var dirs []string
		filepath.WalkDir(top, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			os.Remove(dirs[i])
		}
	}
}

// cgroupfsDirs are a cgroupfs path's directories as kubelet makes them: in
// the memory and pids hierarchies on cgroup v1, the one tree on v2.
func cgroupfsDirs(path string) []string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return []string{filepath.Join("/sys/fs/cgroup", path)}
	}
	return []string{filepath.Join("/sys/fs/cgroup/memory", path), filepath.Join("/sys/fs/cgroup/pids", path)}
}

// berthctl runs, lists, inspects, stops and removes a pod.
func TestBerthctlPods(t *testing.T) {
	d, n := startPodNet(t, framework.Options{})
	berthctl := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(d.BinDir, "berthctl"), append([]string{"--endpoint", "unix://" + d.Socket}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("berthctl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	cfgFile := filepath.Join(t.TempDir(), "pod.yaml")
	os.WriteFile(cfgFile, []byte(`metadata:
  name: ctl-pod
  namespace: e2e
  uid: ctl-uid-1
hostname: ctl-pod
labels:
  app: ctl
linux:
  security_context:
    namespace_options:
      pid: CONTAINER
`), 0o644)
	id := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(berthctl("runp", cfgFile)), "POD ID"))
	if len(id) != 64 {
		t.Fatalf("runp printed %q, want a pod id", id)
	}
	t.Cleanup(func() {
		d.Runtime.RemovePodSandbox(context.Background(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id})
	})
	if out := berthctl("pods", "-label", "app=ctl"); !strings.Contains(out, id[:13]) || !strings.Contains(out, "ctl-pod") || !strings.Contains(out, "Ready") {
		t.Errorf("pods:\n%s", out)
	}
	if out := berthctl("pods", "-label", "app=other"); strings.Contains(out, id[:13]) {
		t.Errorf("pods -label app=other lists the pod:\n%s", out)
	}
	if out := berthctl("inspectp", id[:12]); !strings.Contains(out, "Namespace network") || !strings.Contains(out, n.Subnet.IP.String()[:5]) {
		t.Errorf("inspectp:\n%s", out)
	}
	if out := berthctl("-o", "json", "inspectp", id); !strings.Contains(out, `"id": "`+id+`"`) || !strings.Contains(out, `"cniResult`) {
		t.Errorf("inspectp -o json:\n%s", out)
	}
	berthctl("stopp", id)
	if out := berthctl("pods", "-state", "notready"); !strings.Contains(out, id[:13]) {
		t.Errorf("pods -state notready after stopp:\n%s", out)
	}
	berthctl("rmp", id)
	requireNothingLeft(t, d, n)
}

// The pod CIDR kubelet sends with UpdateRuntimeConfig reaches host-local
// as the ipRanges capability: with no range in the config, pods get
// addresses from it.
func TestPodCIDRFromKubelet(t *testing.T) {
	n := newTestNet(t)
	d := framework.StartDaemon(t, framework.Options{})
	plugins := n.plugins()
	// The range comes from kubelet alone (a config range that differed
	// would have the bridge plugin refuse the second gateway address).
	plugins[0]["capabilities"] = map[string]bool{"ipRanges": true}
	delete(plugins[0]["ipam"].(map[string]any), "ranges")
	n.write(t, d.CNIConfDir, "10-test.conflist", plugins)
	kubelet := n.Subnet
	if _, err := d.Runtime.UpdateRuntimeConfig(d.Ctx(t), &runtimeapi.UpdateRuntimeConfigRequest{
		RuntimeConfig: &runtimeapi.RuntimeConfig{NetworkConfig: &runtimeapi.NetworkConfig{PodCidr: kubelet.String()}},
	}); err != nil {
		t.Fatal(err)
	}
	st := podStatus(t, d, runPod(t, d, podConfig("cidr")))
	if ip := net.ParseIP(st.Status.GetNetwork().GetIp()); ip == nil || !kubelet.Contains(ip) {
		t.Errorf("pod IP %q is not in kubelet's pod CIDR %s", st.Status.GetNetwork().GetIp(), kubelet)
	}
}

// A pod with no hostname and a name longer than any hostname (critest's
// pods look like this) gets the node's hostname, in its own UTS namespace.
func TestPodWithoutHostnameGetsNodeHostname(t *testing.T) {
	d, _ := startPodNet(t, framework.Options{})
	cfg := podConfig("a-pod-name-much-longer-than-the-sixty-four-characters-a-hostname-may-have")
	cfg.Hostname = ""
	id := runPod(t, d, cfg)
	st := podStatus(t, d, id)
	host, _ := os.Hostname()
	if b, _ := os.ReadFile(st.Info.HostnamePath); string(b) != host+"\n" {
		t.Errorf("hostname file = %q, want the node's %q", b, host)
	}
	if got := nsenter(t, []string{"--uts=" + st.Info.Namespaces["uts"]}, "hostname"); strings.TrimSpace(got) != host {
		t.Errorf("hostname in the pod's UTS namespace = %q, want %q", got, host)
	}
}
