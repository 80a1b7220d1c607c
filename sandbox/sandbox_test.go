package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/atomicfile"
	"github.com/berth-cri/berth/errdefs"
)

func TestParseSysctls(t *testing.T) {
	got, err := parseSysctls(map[string]string{
		"net.ipv4.ip_forward":               "1",
		"net/ipv4/conf/eth0.100/forwarding": "1",
		"kernel.shmmax":                     "1000",
		"fs.mqueue.msg_max":                 "20",
	}, true, true)
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]string{}
	for _, s := range got {
		paths[s.key] = s.path
	}
	want := map[string]string{
		"net.ipv4.ip_forward":               "net/ipv4/ip_forward",
		"net/ipv4/conf/eth0.100/forwarding": "net/ipv4/conf/eth0.100/forwarding",
		"kernel.shmmax":                     "kernel/shmmax",
		"fs.mqueue.msg_max":                 "fs/mqueue/msg_max",
	}
	for k, v := range want {
		if paths[k] != v {
			t.Errorf("%s -> %q, want %q", k, paths[k], v)
		}
	}
	for _, bad := range []struct {
		key            string
		ownNet, ownIPC bool
	}{
		{"kernel.panic", true, true},          // not namespaced
		{"net.core.somaxconn", false, true},   // host network
		{"kernel.msgmax", true, false},        // host IPC
		{"net/../kernel/panic", true, true},   // escape
		{"net..ipv4", true, true},             // empty part
		{"net.ipv4.ip_forward\n", true, true}, // junk
	} {
		_, err := parseSysctls(map[string]string{bad.key: "1"}, bad.ownNet, bad.ownIPC)
		if !errdefs.IsInvalid(err) {
			t.Errorf("sysctl %q (own net %v, own ipc %v): %v, want invalid", bad.key, bad.ownNet, bad.ownIPC, err)
		}
	}
	if _, err := parseSysctls(map[string]string{"net.core.somaxconn": "1\nkernel.panic=1"}, true, true); !errdefs.IsInvalid(err) {
		t.Errorf("value with a newline: %v, want invalid", err)
	}
}

func TestResolvConf(t *testing.T) {
	got, err := resolvConf(&runtimeapi.DNSConfig{Servers: []string{"1.2.3.4"}, Searches: []string{"a.b", "b"}, Options: []string{"ndots:2"}}, "/nonexistent")
	if err != nil {
		t.Fatal(err)
	}
	if want := "search a.b b\nnameserver 1.2.3.4\noptions ndots:2\n"; string(got) != want {
		t.Errorf("resolv.conf = %q, want %q", got, want)
	}
	host := filepath.Join(t.TempDir(), "resolv.conf")
	os.WriteFile(host, []byte("nameserver 9.9.9.9\n"), 0o644)
	for _, dns := range []*runtimeapi.DNSConfig{nil, {}} {
		got, err := resolvConf(dns, host)
		if err != nil || string(got) != "nameserver 9.9.9.9\n" {
			t.Errorf("no DNS config %v: %q %v, want the host's file", dns, got, err)
		}
	}
	for _, bad := range []*runtimeapi.DNSConfig{
		{Servers: []string{"not-an-ip"}},
		{Searches: []string{"a b"}},
		{Options: []string{"x\nnameserver 1.1.1.1"}},
	} {
		if err := validateDNS(bad); !errdefs.IsInvalid(err) {
			t.Errorf("validateDNS(%v) = %v, want invalid", bad, err)
		}
	}
}

func TestHostsFile(t *testing.T) {
	b, err := hostsFile("web", []string{"10.1.0.5", "fd00::5"}, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"127.0.0.1\tlocalhost\n", "10.1.0.5\tweb\n", "fd00::5\tweb\n"} {
		if !strings.Contains(string(b), line) {
			t.Errorf("hosts lacks %q:\n%s", line, b)
		}
	}
}

func TestValidateHostname(t *testing.T) {
	for _, ok := range []string{"a", "web-1", "web-1.example.com", "web-1.t.ns.svc.", strings.Repeat("a", 64)} {
		if err := validateHostname(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "-a", "a_b", "a b", "a..", ".a", strings.Repeat("a", 65), "a\n"} {
		if err := validateHostname(bad); !errdefs.IsInvalid(err) {
			t.Errorf("%q: %v, want invalid", bad, err)
		}
	}
}

func TestCNICapabilities(t *testing.T) {
	cfg := &runtimeapi.PodSandboxConfig{
		PortMappings: []*runtimeapi.PortMapping{
			{Protocol: runtimeapi.Protocol_UDP, ContainerPort: 53, HostPort: 5353, HostIp: "127.0.0.1"},
			{ContainerPort: 80}, // no host port
		},
		Annotations: map[string]string{ingressBandwidthAnnotation: "10M", egressBandwidthAnnotation: "1Mi"},
	}
	caps, err := cniCapabilities(cfg, "10.1.0.0/24,fd00::/64")
	if err != nil {
		t.Fatal(err)
	}
	pms := caps["portMappings"].([]map[string]any)
	if len(pms) != 1 || pms[0]["protocol"] != "udp" || pms[0]["hostPort"] != int32(5353) || pms[0]["hostIP"] != "127.0.0.1" {
		t.Errorf("portMappings = %v", pms)
	}
	if r := caps["ipRanges"].([][]map[string]string); len(r) != 2 || r[1][0]["subnet"] != "fd00::/64" {
		t.Errorf("ipRanges = %v", r)
	}
	bw := caps["bandwidth"].(map[string]any)
	if bw["ingressRate"] != int64(10_000_000) || bw["egressRate"] != int64(1<<20) {
		t.Errorf("bandwidth = %v", bw)
	}
	if caps, _ := cniCapabilities(&runtimeapi.PodSandboxConfig{}, ""); len(caps) != 0 {
		t.Errorf("empty config gives capabilities %v", caps)
	}
	for _, v := range []string{"fast", "10", "2P"} {
		cfg := &runtimeapi.PodSandboxConfig{Annotations: map[string]string{egressBandwidthAnnotation: v}}
		if _, err := cniCapabilities(cfg, ""); !errdefs.IsInvalid(err) {
			t.Errorf("bandwidth %q: %v, want invalid", v, err)
		}
	}
}

func TestLookupByPrefix(t *testing.T) {
	m := &Manager{pods: map[string]*pod{}, names: map[Metadata]string{}}
	a, b := "abc"+strings.Repeat("0", 61), "abd"+strings.Repeat("0", 61)
	for _, id := range []string{a, b} {
		m.pods[id] = &pod{sb: &Sandbox{Definition: Definition{ID: id}}}
	}
	if sb, err := m.Get("abc"); err != nil || sb.ID != a {
		t.Errorf("Get(abc) = %v, %v", sb, err)
	}
	if sb, err := m.Get(b); err != nil || sb.ID != b {
		t.Errorf("Get(full id) = %v, %v", sb, err)
	}
	if _, err := m.Get("ab"); !errdefs.IsInvalid(err) {
		t.Errorf("ambiguous prefix: %v, want invalid", err)
	}
	if _, err := m.Get("ff"); !errdefs.IsNotFound(err) {
		t.Errorf("unknown prefix: %v, want not found", err)
	}
	if _, err := m.Get("../x"); !errdefs.IsNotFound(err) {
		t.Errorf("non-hex: %v, want not found", err)
	}
	if _, err := m.Get(""); !errdefs.IsInvalid(err) {
		t.Errorf("empty id: %v, want invalid", err)
	}
}

func TestNetworkLoadPicksFirstValid(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	n := newNetwork(NetworkOptions{ConfDir: dir, PluginDirs: []string{"/usr/lib/cni"}})
	if err := n.status(); !errdefs.Is(err, errdefs.KindFailedPrecondition) || !strings.Contains(err.Error(), "no CNI network config") {
		t.Errorf("empty dir: %v", err)
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		t.Skip("needs the CNI plugins in /usr/lib/cni")
	}
	write("00-garbage.conflist", "{")
	write("01-missing.conflist", `{"cniVersion":"1.0.0","name":"missing","plugins":[{"type":"no-such-plugin"}]}`)
	err := n.status()
	if err == nil || !strings.Contains(err.Error(), "00-garbage.conflist") || !strings.Contains(err.Error(), "no-such-plugin") {
		t.Errorf("only bad configs: %v, want both named", err)
	}
	write("05-single.conf", `{"cniVersion":"1.0.0","name":"single","type":"loopback"}`)
	write("10-list.conflist", `{"cniVersion":"1.0.0","name":"list","plugins":[{"type":"loopback"}]}`)
	list, file, err := n.load()
	if err != nil || list.Name != "single" || filepath.Base(file) != "05-single.conf" {
		t.Errorf("load = %v %s %v, want the .conf first in lexical order", list, file, err)
	}
}

// The bridge config in contrib/ is valid with Debian's plugins.
func TestContribConflist(t *testing.T) {
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		t.Skip("needs the CNI plugins in /usr/lib/cni")
	}
	n := newNetwork(NetworkOptions{ConfDir: "../contrib/cni", PluginDirs: []string{"/usr/lib/cni"}})
	list, _, err := n.load()
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, p := range list.Plugins {
		types = append(types, p.Network.Type)
	}
	if got := strings.Join(types, ","); got != "bridge,portmap" {
		t.Errorf("contrib plugins = %s", got)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	for _, v := range []string{"one", "two"} {
		if err := atomicfile.WriteFile(p, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(p); string(b) != v {
			t.Errorf("read %q, want %q", b, v)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}
