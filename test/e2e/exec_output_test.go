package e2e

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// An exec probe that prints more than a gRPC message holds, on both
// streams, answers with its output cut to fit (stdout and stderr
// together), not ResourceExhausted; a flood of newlines too.
func TestExecSyncHugeOutputFits(t *testing.T) {
	e := startContainerEnv(t)
	handlers := handlerNames(t)
	if len(handlers) == 0 {
		t.Skip("no runtime handler")
	}
	pod := e.pod(t, handlers[0], runtimeapi.NamespaceMode_CONTAINER)
	id := e.run(t, pod, e.config("chatty", "sleep", "3600"))
	const maxMsg = 16 << 20
	for name, script := range map[string]string{
		"bytes":    "head -c 20000000 /dev/zero | tr '\\0' o; head -c 20000000 /dev/zero | tr '\\0' e >&2; exit 3",
		"newlines": "head -c 20000000 /dev/zero | tr '\\0' '\\n'; head -c 20000000 /dev/zero | tr '\\0' '\\n' >&2; exit 3",
	} {
		t.Run(name, func(t *testing.T) {
			r, err := e.d.Runtime.ExecSync(e.d.Ctx(t), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"sh", "-c", script}, Timeout: 120})
			if err != nil {
				t.Fatalf("ExecSync: %v", err)
			}
			if r.ExitCode != 3 {
				t.Errorf("exit code %d, want 3", r.ExitCode)
			}
			if n := len(r.Stdout) + len(r.Stderr); n > maxMsg || n == 0 {
				t.Errorf("output %d+%d bytes, want some and at most %d together", len(r.Stdout), len(r.Stderr), maxMsg)
			}
			if name == "bytes" && (strings.Trim(string(r.Stdout), "o") != "" || strings.Trim(string(r.Stderr), "e") != "" || len(r.Stderr) == 0) {
				t.Errorf("streams mixed up or stderr lost: %d/%d bytes", len(r.Stdout), len(r.Stderr))
			}
		})
	}
}

// The ExecSync output berthd holds at once is bounded node-wide
// (runtime.exec_sync_output_budget, issue 23): with a budget of 1 MiB an
// exec printing 2 MiB is refused with ResourceExhausted naming the key,
// while small outputs, many at once, still answer.
func TestExecSyncOutputBudget(t *testing.T) {
	e := startContainerEnvWith(t, "\n[runtime]\nexec_sync_output_budget = 1048576\n")
	handlers := handlerNames(t)
	if len(handlers) == 0 {
		t.Skip("no runtime handler")
	}
	pod := e.pod(t, handlers[0], runtimeapi.NamespaceMode_CONTAINER)
	id := e.run(t, pod, e.config("chatty", "sleep", "3600"))
	_, err := e.d.Runtime.ExecSync(e.d.Ctx(t), &runtimeapi.ExecSyncRequest{ContainerId: id,
		Cmd: []string{"sh", "-c", "head -c 2097152 /dev/zero | tr '\\0' o"}, Timeout: 60})
	wantCode(t, "exec printing 2 MiB with a budget of 1 MiB", err, codes.ResourceExhausted)
	if err != nil && !strings.Contains(err.Error(), "exec_sync_output_budget") {
		t.Errorf("refusal does not name the key: %v", err)
	}
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			r, err := e.d.Runtime.ExecSync(e.d.Ctx(t), &runtimeapi.ExecSyncRequest{ContainerId: id,
				Cmd: []string{"sh", "-c", "head -c 100000 /dev/zero | tr '\\0' o"}, Timeout: 60})
			if err == nil && len(r.Stdout) != 100000 {
				err = fmt.Errorf("stdout %d bytes, want 100000", len(r.Stdout))
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Errorf("small exec within the budget: %v", err)
		}
	}
}
