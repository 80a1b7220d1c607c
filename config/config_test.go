package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestMissingFileGivesDefaults(t *testing.T) {
	cfg, err := Load(filepath.Join(t.TempDir(), "none.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Root != "/var/lib/berth" || cfg.Image.GraphRoot != "/var/lib/berth/storage" {
		t.Errorf("defaults not applied: root %q graph root %q", cfg.Root, cfg.Image.GraphRoot)
	}
	if h := cfg.Runtime.Handlers["berth"]; h.Root != "/run/berth/runtime/berth" || h.Type != "oci" {
		t.Errorf("bundled handler = %+v", h)
	}
}

func TestDropInsApplyInLexicalOrderAndFlagsLast(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "berth.toml")
	write(t, main, "root = \"/a\"\n[runtime.handlers.runc]\npath = \"/usr/sbin/runc\"\n")
	write(t, filepath.Join(main+".d", "20-b.toml"), "root = \"/c\"\n")
	write(t, filepath.Join(main+".d", "10-a.toml"), "root = \"/b\"\n[runtime.handlers.crun]\npath = \"/usr/bin/crun\"\n")
	write(t, filepath.Join(main+".d", "ignored.conf"), "nonsense")
	cfg, err := Load(main)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Root != "/c" {
		t.Errorf("root = %q, want the last drop-in's /c", cfg.Root)
	}
	for _, h := range []string{"berth", "runc", "crun"} {
		if _, ok := cfg.Runtime.Handlers[h]; !ok {
			t.Errorf("handler %s lost across files", h)
		}
	}
	cfg, err = Load(main, func(c *Config) { c.Root = "/flag" })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Root != "/flag" || cfg.Image.GraphRoot != "/flag/storage" {
		t.Errorf("flag override: root %q graph root %q; derived keys must follow the flag", cfg.Root, cfg.Image.GraphRoot)
	}
}

func TestErrorsNameFileAndKey(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{"[image]\ndriver = \"zfs\"\n", "image.driver"},
		{"[runtime.handlers.kata]\ntype = \"vm\"\n", "runtime.handlers.kata.path"},
		{"[runtime.handlers.\"Bad_Name\"]\npath = \"/x\"\n", "runtime.handlers.Bad_Name"},
		{"[runtime]\ncgroup_driver = \"openrc\"\n", "runtime.cgroup_driver"},
		{"[runtime]\ncgroup_driver = \"systemd\"\ncgroup_parent = \"/berth\"\n", "runtime.cgroup_parent"},
		{"[runtime]\ncgroup_driver = \"cgroupfs\"\ncgroup_parent = \"berth.slice\"\n", "runtime.cgroup_parent"},
		{"[runtime]\ncgroup_parent = \"berth--x.slice\"\n", "runtime.cgroup_parent"},
		{"listen = \"tcp://0.0.0.0:1\"\n", "listen"},
		{"[pod]\nshm_size = -1\n", "pod.shm_size"},
		{"[image]\npull_timeout = \"soon\"\n", "pull_timeout"},
		{"[network]\nconfdir = \"/x\"\n", "unknown key network.confdir"},
	} {
		path := filepath.Join(t.TempDir(), "berth.toml")
		write(t, path, tc.body)
		_, err := Load(path)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want the file and %q", tc.body, err, tc.want)
		}
	}
}

func TestEncodeRoundTrips(t *testing.T) {
	cfg := Default()
	cfg.fillDerived()
	b, err := cfg.Encode()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "berth.toml")
	write(t, path, string(b))
	again, err := Load(path)
	if err != nil {
		t.Fatalf("Load of Encode output: %v\n%s", err, b)
	}
	b2, _ := again.Encode()
	if string(b) != string(b2) {
		t.Errorf("round trip changed the config:\n%s\n---\n%s", b, b2)
	}
}

// The shipped contrib/berth.toml documents the defaults: it must load, and
// give exactly what no file gives.
func TestContribConfigIsTheDefaults(t *testing.T) {
	shipped, err := Load("../contrib/berth.toml")
	if err != nil {
		t.Fatal(err)
	}
	none, err := Load(filepath.Join(t.TempDir(), "none.toml"))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := shipped.Encode()
	b, _ := none.Encode()
	if string(a) != string(b) {
		t.Errorf("contrib/berth.toml differs from the defaults:\n%s\n---\n%s", a, b)
	}
}

func TestDiscoverHandlers(t *testing.T) {
	found := map[string]string{"runc": "/usr/sbin/runc", "crun": "/usr/bin/crun"}
	lookPath := func(name string) (string, error) {
		if p, ok := found[name]; ok {
			return p, nil
		}
		return "", os.ErrNotExist
	}
	r := Default().Runtime
	r.Handlers["runc"] = RuntimeHandler{Path: "/opt/runc"}
	r.discoverHandlers(lookPath)
	if h := r.Handlers["runc"]; h.Path != "/opt/runc" || h.Discovered {
		t.Errorf("a configured runc was replaced: %+v", h)
	}
	if h := r.Handlers["crun"]; h.Path != "/usr/bin/crun" || !h.Discovered {
		t.Errorf("crun on PATH not offered: %+v", h)
	}
	if r.Default != "berth" {
		t.Errorf("default handler changed to %q", r.Default)
	}

	r = Default().Runtime
	r.DiscoverHandlers = false
	r.discoverHandlers(lookPath)
	if len(r.Handlers) != 1 {
		t.Errorf("discover_handlers = false still added handlers: %v", r.Handlers)
	}
	delete(found, "crun")
	r = Default().Runtime
	r.discoverHandlers(lookPath)
	if _, ok := r.Handlers["crun"]; ok {
		t.Error("crun offered though it is not installed")
	}
}

// crictl info prints the config as JSON: with the file's key names.
func TestMapUsesTOMLKeys(t *testing.T) {
	m, err := Default().Map()
	if err != nil {
		t.Fatal(err)
	}
	img, _ := m["image"].(map[string]any)
	if img["pull_retries"] == nil || img["PullRetries"] != nil {
		t.Errorf("image section = %v, want TOML key names", img)
	}
	if rt, _ := m["runtime"].(map[string]any); rt["stop_timeout_default"] != "10s" {
		t.Errorf("runtime.stop_timeout_default = %v, want \"10s\"", rt["stop_timeout_default"])
	}
}

func TestAllowedAnnotationsValidation(t *testing.T) {
	for _, tc := range []struct {
		list []string
		ok   bool
	}{
		{[]string{"run.oci.keep_original_groups", "io.kubernetes.cri-o.*"}, true},
		{[]string{""}, false},
		{[]string{"*"}, false},
		{[]string{"a*b"}, false},
	} {
		path := filepath.Join(t.TempDir(), "berth.toml")
		q := make([]string, len(tc.list))
		for i, a := range tc.list {
			q[i] = fmt.Sprintf("%q", a)
		}
		body := "[runtime.handlers.berth]\nallowed_annotations = [" + strings.Join(q, ", ") + "]\n"
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := Load(path)
		if tc.ok {
			if err != nil {
				t.Errorf("%v: %v", tc.list, err)
			} else if _, h, _ := c.Runtime.Handler(""); len(h.AllowedAnnotations) != len(tc.list) {
				t.Errorf("%v: loaded %v", tc.list, h.AllowedAnnotations)
			}
		} else if err == nil || !strings.Contains(err.Error(), "allowed_annotations") {
			t.Errorf("%v: got %v, want an allowed_annotations error", tc.list, err)
		}
	}
}

// A node that names no fallback network gets none: NetworkReady stays
// false until its CNI config exists (issue 23, item 2). The built-in
// bridge is the first run's, asked for by `make run`, never a node's.
func TestNoFallbackNetworkByDefault(t *testing.T) {
	cfg, err := Load(filepath.Join(t.TempDir(), "none.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Network.FallbackConfig != FallbackNone {
		t.Errorf("network.fallback_config with no file = %q, want %q", cfg.Network.FallbackConfig, FallbackNone)
	}
}
