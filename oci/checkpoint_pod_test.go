package oci

import (
	"os"
	"path/filepath"
	"testing"

	metadata "github.com/checkpoint-restore/checkpointctl/lib"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/errdefs"
)

func TestCheckPodManifest(t *testing.T) {
	ok := func() podCheckpointManifest {
		return podCheckpointManifest{Version: podManifestVersion, Containers: []podCheckpointEntry{
			{Name: "a", Archive: "container-0.tar"}, {Name: "b", Archive: "container-1.tar"}}}
	}
	if m := ok(); checkPodManifest(&m) != nil {
		t.Fatalf("a good manifest is refused: %v", checkPodManifest(&m))
	}
	for name, edit := range map[string]func(m *podCheckpointManifest){
		"another version":     func(m *podCheckpointManifest) { m.Version = 2 },
		"no containers":       func(m *podCheckpointManifest) { m.Containers = nil },
		"a name twice":        func(m *podCheckpointManifest) { m.Containers[1].Name = "a" },
		"an archive twice":    func(m *podCheckpointManifest) { m.Containers[1].Archive = "container-0.tar" },
		"an empty name":       func(m *podCheckpointManifest) { m.Containers[0].Name = "" },
		"a name with a slash": func(m *podCheckpointManifest) { m.Containers[0].Name = "../a" },
		"an archive path":     func(m *podCheckpointManifest) { m.Containers[0].Archive = "../container-0.tar" },
		"an absolute archive": func(m *podCheckpointManifest) { m.Containers[0].Archive = "/etc/shadow" },
		"another archive name": func(m *podCheckpointManifest) {
			m.Containers[0].Archive = "a.tar"
		},
		"too many containers": func(m *podCheckpointManifest) {
			m.Containers = make([]podCheckpointEntry, maxPodContainers+1)
		},
	} {
		m := ok()
		edit(&m)
		if err := checkPodManifest(&m); err == nil {
			t.Errorf("a manifest with %s is accepted", name)
		}
	}
}

func TestCheckConfig(t *testing.T) {
	p := &PreparedRestore{
		contents: &checkpointContents{Config: metadata.ContainerConfig{
			RootfsImageName: "registry.example/app:1", RootfsImageRef: "sha256:abc"}},
		spec: rspec.Spec{Process: &rspec.Process{
			Args: []string{"/bin/sh", "-c", "run"}, Cwd: "/work",
			Env: []string{"PATH=/bin", "MODE=fast"}, User: rspec.User{UID: 1000, GID: 100}}},
	}
	cfg := func() *runtimeapi.ContainerConfig {
		return &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "app"},
			Image: &runtimeapi.ImageSpec{Image: "registry.example/app:1"}}
	}
	good := map[string]func(c *runtimeapi.ContainerConfig){
		"the image by name":     func(*runtimeapi.ContainerConfig) {},
		"the image by id":       func(c *runtimeapi.ContainerConfig) { c.Image.Image = "abc" },
		"the same command":      func(c *runtimeapi.ContainerConfig) { c.Command = []string{"/bin/sh", "-c"}; c.Args = []string{"run"} },
		"the args only":         func(c *runtimeapi.ContainerConfig) { c.Args = []string{"run"} },
		"the working directory": func(c *runtimeapi.ContainerConfig) { c.WorkingDir = "/work/" },
		"a variable": func(c *runtimeapi.ContainerConfig) {
			c.Envs = []*runtimeapi.KeyValue{{Key: "MODE", Value: []byte("fast")}}
		},
		"the user": func(c *runtimeapi.ContainerConfig) {
			c.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				RunAsUser: &runtimeapi.Int64Value{Value: 1000}, RunAsGroup: &runtimeapi.Int64Value{Value: 100}}}
		},
	}
	bad := map[string]func(c *runtimeapi.ContainerConfig){
		"another image":             func(c *runtimeapi.ContainerConfig) { c.Image.Image = "registry.example/app:2" },
		"another command":           func(c *runtimeapi.ContainerConfig) { c.Command = []string{"/bin/sh"} },
		"other args":                func(c *runtimeapi.ContainerConfig) { c.Args = []string{"walk"} },
		"another working directory": func(c *runtimeapi.ContainerConfig) { c.WorkingDir = "/" },
		"another value": func(c *runtimeapi.ContainerConfig) {
			c.Envs = []*runtimeapi.KeyValue{{Key: "MODE", Value: []byte("slow")}}
		},
		"another user": func(c *runtimeapi.ContainerConfig) {
			c.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				RunAsUser: &runtimeapi.Int64Value{Value: 0}}}
		},
		"another group": func(c *runtimeapi.ContainerConfig) {
			c.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				RunAsGroup: &runtimeapi.Int64Value{Value: 0}}}
		},
	}
	for name, edit := range good {
		c := cfg()
		edit(c)
		if err := p.CheckConfig(c); err != nil {
			t.Errorf("a config with %s is refused: %v", name, err)
		}
	}
	for name, edit := range bad {
		c := cfg()
		edit(c)
		if err := p.CheckConfig(c); !errdefs.IsInvalid(err) {
			t.Errorf("a config with %s: %v, want invalid", name, err)
		}
	}
}

func TestOpenOutputDir(t *testing.T) {
	empty := t.TempDir()
	root, err := openOutputDir(empty)
	if err != nil {
		t.Fatalf("an empty directory is refused: %v", err)
	}
	root.Close()
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(empty, link); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(full, "x")
	for _, dir := range []string{"", "relative", full, link, file, filepath.Join(empty, "missing")} {
		if root, err := openOutputDir(dir); !errdefs.IsInvalid(err) {
			if root != nil {
				root.Close()
			}
			t.Errorf("output directory %q: %v, want invalid", dir, err)
		}
	}
}
