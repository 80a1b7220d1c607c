package conformance

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
)

func TestHooks(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *ociRuntime) {
		c := newContainer(t, rt)
		out := filepath.Join(c.bundle, "hooks")
		if err := os.Mkdir(out, 0o777); err != nil {
			t.Fatal(err)
		}
		// Hooks run the host's shell, in the runtime's namespaces or, for
		// createContainer, in the container's mount namespace before
		// pivot_root (host paths still resolve); startContainer runs in the
		// container after pivot_root: its shell, writing through a bind mount.
		host := func(name string) specs.Hook {
			return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > " + filepath.Join(out, name+".json")}, Env: []string{"PATH=/bin:/usr/bin"}}
		}
		inCtr := func(name string) specs.Hook {
			return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > /hooks/" + name + ".json"}}
		}
		c.spec.Mounts = append(c.spec.Mounts, specs.Mount{Destination: "/hooks", Type: "bind", Source: out, Options: []string{"rbind", "rw"}})
		c.spec.Hooks = &specs.Hooks{
			Prestart:        []specs.Hook{host("prestart")}, //nolint:staticcheck // still in the spec, still run
			CreateRuntime:   []specs.Hook{host("createRuntime")},
			CreateContainer: []specs.Hook{host("createContainer")},
			StartContainer:  []specs.Hook{inCtr("startContainer")},
			Poststart:       []specs.Hook{host("poststart")},
			Poststop:        []specs.Hook{host("poststop")},
		}
		c.spec.Process.Args = []string{"true"}
		c.create()
		c.start()
		c.wait(10 * time.Second)
		rt.mustRun(t, "delete", c.id)

		bundle, _ := filepath.EvalSymlinks(c.bundle)
		allowed := map[string][]string{
			"prestart":        {"creating", "created"},
			"createRuntime":   {"creating", "created"},
			"createContainer": {"creating", "created"},
			"startContainer":  {"created"},
			"poststart":       {"running", "stopped", "created"},
			"poststop":        {"stopped"},
		}
		for name, statuses := range allowed {
			b, err := os.ReadFile(filepath.Join(out, name+".json"))
			if err != nil {
				t.Errorf("hook %s did not run: %v", name, err)
				continue
			}
			var st specs.State
			if err := json.Unmarshal(b, &st); err != nil {
				t.Errorf("hook %s got no state on stdin: %q", name, b)
				continue
			}
			if st.ID != c.id || st.Bundle != bundle || st.Version == "" {
				t.Errorf("hook %s: state %+v", name, st)
			}
			// hooks in the container's namespaces see the pid from its PID
			// namespace (runc's behaviour): 1
			inContainer := name == "createContainer" || name == "startContainer"
			if name != "poststop" && st.Pid != c.pid && !(inContainer && st.Pid == 1) {
				t.Errorf("hook %s: pid %d, want %d", name, st.Pid, c.pid)
			}
			if !contains(statuses, string(st.Status)) {
				t.Errorf("hook %s: status %q, want one of %v", name, st.Status, statuses)
			}
		}
	})
}

// TestHooksWithoutEnvGetTheRuntimeEnv: a hook that runs in the runtime's
// namespaces and has no env of its own gets the runtime's environment, as
// runc gives it, and nothing the runtime set for its own use (berth-runner
// hands GOMAXPROCS=1 to its container init only when no such hook exists).
func TestHooksWithoutEnvGetTheRuntimeEnv(t *testing.T) {
	if _, set := os.LookupEnv("GOMAXPROCS"); set {
		t.Skip("GOMAXPROCS is set in the test's environment")
	}
	forEachRuntime(t, func(t *testing.T, rt *ociRuntime) {
		c := newContainer(t, rt)
		out := filepath.Join(c.bundle, "hooks")
		if err := os.Mkdir(out, 0o777); err != nil {
			t.Fatal(err)
		}
		envTo := func(name string) specs.Hook {
			return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "env > " + filepath.Join(out, name)}}
		}
		c.spec.Hooks = &specs.Hooks{
			Prestart:      []specs.Hook{envTo("prestart")}, //nolint:staticcheck // still in the spec, still run
			CreateRuntime: []specs.Hook{envTo("createRuntime")},
			Poststart:     []specs.Hook{envTo("poststart")},
			Poststop:      []specs.Hook{envTo("poststop")},
		}
		c.spec.Process.Args = []string{"true"}
		c.create()
		c.start()
		c.wait(10 * time.Second)
		rt.mustRun(t, "delete", c.id)
		for _, name := range []string{"prestart", "createRuntime", "poststart", "poststop"} {
			b, err := os.ReadFile(filepath.Join(out, name))
			if err != nil {
				t.Errorf("hook %s did not run: %v", name, err)
				continue
			}
			env := strings.Split(string(b), "\n")
			if !contains(env, "PATH="+os.Getenv("PATH")) {
				t.Errorf("hook %s did not get the runtime's PATH: %q", name, b)
			}
			for _, kv := range env {
				if strings.HasPrefix(kv, "GOMAXPROCS=") {
					t.Errorf("hook %s got %s, which nobody set", name, kv)
				}
			}
		}
	})
}

func TestHookTimeout(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *ociRuntime) {
		c := newContainer(t, rt)
		timeout := 1
		c.spec.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sleep", Args: []string{"sleep", "20"}, Timeout: &timeout}}}
		start := time.Now()
		r := c.tryCreate()
		if r.code == 0 {
			t.Fatal("create succeeded although its hook timed out")
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("create took %v with a 1s hook timeout", d)
		}
		if !strings.Contains(r.stderr, "timeout") {
			t.Errorf("create error does not say the hook timed out: %s", r)
		}
		c.spec.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/false"}}}
		if r := c.tryCreate(); r.code == 0 {
			t.Errorf("create succeeded although its hook failed")
		}
	})
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
