package sandbox

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-cri/berth/errdefs"
)

// The fallback is used only while the directory has no config file; a
// node's own config wins, and a broken one is reported, not replaced.
func TestNetworkFallback(t *testing.T) {
	if _, err := os.Stat("/usr/lib/cni/loopback"); err != nil {
		t.Skip("needs the CNI plugins in /usr/lib/cni")
	}
	dir := filepath.Join(t.TempDir(), "net.d")
	calls := 0
	fb := &FallbackNetwork{Source: "test-fallback", Load: func() ([]byte, error) {
		calls++
		return []byte(`{"cniVersion":"1.0.0","name":"fallback","plugins":[{"type":"loopback"}]}`), nil
	}}
	n := newNetwork(NetworkOptions{ConfDir: dir, PluginDirs: []string{"/usr/lib/cni"}, Fallback: fb})

	// No directory at all, then an empty one: the fallback.
	for _, step := range []string{"missing dir", "empty dir"} {
		list, file, err := n.load()
		if err != nil || list.Name != "fallback" || file != "test-fallback" {
			t.Fatalf("%s: load = %v %q %v, want the fallback", step, list, file, err)
		}
		if info := n.info(); !info.Fallback || info.Name != "fallback" || info.Error != "" || info.ConfDir != dir {
			t.Errorf("%s: info = %+v", step, info)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if calls == 0 {
		t.Error("the fallback was never loaded")
	}

	// A broken node config is an error naming it, not a reason to fall back.
	bad := filepath.Join(dir, "10-bad.conflist")
	if err := os.WriteFile(bad, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := n.load(); !errdefs.Is(err, errdefs.KindFailedPrecondition) || !strings.Contains(err.Error(), "10-bad.conflist") {
		t.Errorf("broken node config: %v, want it named", err)
	}
	if info := n.info(); info.Fallback || info.Error == "" {
		t.Errorf("broken node config: info = %+v", info)
	}

	// A good node config wins.
	if err := os.WriteFile(filepath.Join(dir, "05-node.conflist"),
		[]byte(`{"cniVersion":"1.0.0","name":"node","plugins":[{"type":"loopback"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	list, file, err := n.load()
	if err != nil || list.Name != "node" || filepath.Base(file) != "05-node.conflist" {
		t.Errorf("node config: load = %v %q %v, want the node's", list, file, err)
	}
	if info := n.info(); info.Fallback || info.Name != "node" {
		t.Errorf("node config: info = %+v", info)
	}
}

// A fallback that cannot be used says so, naming its source.
func TestNetworkFallbackBroken(t *testing.T) {
	for name, load := range map[string]func() ([]byte, error){
		"unreadable": func() ([]byte, error) { return nil, errors.New("no such file") },
		"not json":   func() ([]byte, error) { return []byte("{"), nil },
		"missing plugin": func() ([]byte, error) {
			return []byte(`{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"no-such-plugin"}]}`), nil
		},
	} {
		n := newNetwork(NetworkOptions{ConfDir: t.TempDir(), PluginDirs: []string{"/usr/lib/cni"},
			Fallback: &FallbackNetwork{Source: "/etc/berth/fb.conflist", Load: load}})
		err := n.status()
		if !errdefs.Is(err, errdefs.KindFailedPrecondition) || !strings.Contains(err.Error(), "/etc/berth/fb.conflist") {
			t.Errorf("%s: %v, want FailedPrecondition naming the fallback", name, err)
		}
	}
}
