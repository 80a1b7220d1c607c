package e2e

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// PID mode TARGET (kubectl debug's ephemeral containers) joins the PID
// namespace of a running container of the pod; a target that is not
// running is refused, whatever process now has its old pid.
func TestTargetPIDNamespace(t *testing.T) {
	e := startContainerEnv(t)
	forEachHandler(t, e.d, func(t *testing.T, handler string) {
		pod := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)
		target := e.run(t, pod, e.config("target", "sleep", "3600"))
		targetNS := strings.TrimSpace(string(e.exec(t, target, 10, "readlink", "/proc/self/ns/pid").Stdout))

		cfg := e.config("debug", "sleep", "3600")
		cfg.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_TARGET, TargetId: target},
		}}
		debug := e.run(t, pod, cfg)
		if got := strings.TrimSpace(string(e.exec(t, debug, 10, "readlink", "/proc/self/ns/pid").Stdout)); got != targetNS || got == "" {
			t.Errorf("debug container's PID namespace %q, want the target's %q", got, targetNS)
		}
		if out := string(e.exec(t, debug, 10, "cat", "/proc/1/cmdline").Stdout); !strings.HasPrefix(out, "sleep") {
			t.Errorf("PID 1 seen from the debug container: %q, want the target's sleep", out)
		}

		e.stop(t, target, 0)
		cfg = e.config("debug-late", "true")
		cfg.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_TARGET, TargetId: target},
		}}
		if _, err := e.tryCreate(t, pod, cfg); status.Code(err) != codes.FailedPrecondition {
			t.Errorf("TARGET of a stopped container: %v, want FailedPrecondition", err)
		}
	})
}
