package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/cgroups"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/test/framework"
)

// A handler with cgroup_writable delegates a user-namespaced container's
// cgroup to its root on cgroup v2: the container can make a cgroup below
// its own and move itself there, as systemd or a nested runtime would.
// The same handler without the key, or a container without a user
// namespace, keeps /sys/fs/cgroup read-only.
func TestUserNamespaceCgroupDelegation(t *testing.T) {
	if !cgroups.IsCgroup2UnifiedMode() {
		t.Skip("cgroup delegation needs a cgroup v2 node (make vm-test runs this)")
	}
	paths := map[string]string{"berth": filepath.Join(framework.BinDir(t), "berth-runner"), "runc": "/usr/sbin/runc"}
	if p, err := exec.LookPath("crun"); err == nil {
		paths["crun"] = p
	}
	var toml strings.Builder
	var handlers []string
	for _, h := range handlerNames(t) {
		if p, ok := paths[h]; ok {
			fmt.Fprintf(&toml, "[runtime.handlers.%s-delegated]\npath = %q\ncgroup_writable = true\n", h, p)
			handlers = append(handlers, h)
		}
	}
	e := startContainerEnvWith(t, toml.String())
	_, features := statusFeatures(t, e)
	// Makes a cgroup below its own, joins it, and says where it is.
	script := `mkdir /sys/fs/cgroup/inner && echo $$ > /sys/fs/cgroup/inner/cgroup.procs && cat /proc/self/cgroup`
	// Pods never share node ids: each gets a range of its own.
	next := uint32(usernsHostID)
	ids := func() *runtimeapi.UserNamespace {
		next += 65536
		return usernsOptions(next, 65536)
	}
	for _, h := range handlers {
		t.Run(h, func(t *testing.T) {
			if !features[h].GetUserNamespaces() {
				t.Skipf("handler %s has no user namespaces", h)
			}
			for _, tc := range []struct {
				handler string
				userns  bool
				want    string // the container's stdout; "" means the script fails
			}{
				{h + "-delegated", true, "0::/inner\n"},
				{h, true, ""},
				{h + "-delegated", false, ""},
			} {
				userns := ids()
				pod, err := e.podWith(t, tc.handler, func(c *runtimeapi.PodSandboxConfig) {
					if tc.userns {
						c.Linux.SecurityContext.NamespaceOptions.UsernsOptions = userns
					}
				})
				if err != nil {
					t.Fatalf("RunPodSandbox (%s, user namespace %v): %v", tc.handler, tc.userns, err)
				}
				cfg := e.config("delegate", "sh", "-c", script)
				if tc.userns {
					cfg.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
						NamespaceOptions: &runtimeapi.NamespaceOption{UsernsOptions: userns},
					}}
				}
				id := e.run(t, pod, cfg)
				st := e.waitExit(t, id)
				lines := readLog(t, st.LogPath)
				out := logText(lines, "stdout")
				if tc.want != "" && (st.ExitCode != 0 || out != tc.want) {
					t.Errorf("%s, user namespace %v: exit %d, stdout %q, stderr %q; want 0 and %q",
						tc.handler, tc.userns, st.ExitCode, out, logText(lines, "stderr"), tc.want)
				}
				if tc.want == "" && st.ExitCode == 0 {
					t.Errorf("%s, user namespace %v: made and joined a cgroup (stdout %q); want a read-only /sys/fs/cgroup",
						tc.handler, tc.userns, out)
				}
			}
		})
	}
}
