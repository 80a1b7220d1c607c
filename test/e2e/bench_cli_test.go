package e2e

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// berthctl bench runs whole pod lifecycles (kubelet-style pods, with a
// PID namespace per container, and shared-PID pods, so with an infra,
// logging; a container; probes) and tears everything down again, even
// the pods of lifecycles that failed.
func TestBerthctlBench(t *testing.T) {
	e := startContainerEnv(t)
	t.Run("kubelet", func(t *testing.T) { testBerthctlBench(t, e) })
	t.Run("shared-pid-logs", func(t *testing.T) {
		logs := t.TempDir()
		testBerthctlBench(t, e, "-pid", "pod", "-log-dir", logs)
		if m, _ := filepath.Glob(filepath.Join(logs, "berthctl-bench_bench-*_*", "bench", "0.log")); len(m) != 4 {
			t.Errorf("container logs %v, want 4", m)
		}
	})
}

func testBerthctlBench(t *testing.T, e *ctrEnv, flags ...string) {
	d := e.d
	args := append([]string{"--endpoint", d.Socket, "-o", "json",
		"bench", "-image", e.image, "-pods", "4", "-parallel", "2", "-execs", "3"}, flags...)
	cmd := exec.Command(filepath.Join(d.BinDir, "berthctl"), args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("berthctl bench: %v\n%s%s", err, out, stderr.String())
	}
	var sum struct {
		Steps []struct {
			Step string  `json:"step"`
			N    int     `json:"n"`
			P50  float64 `json:"p50_ms"`
		} `json:"steps"`
		PodsPerSec float64  `json:"pods_per_second"`
		Errors     []string `json:"errors"`
	}
	if err := json.Unmarshal(out, &sum); err != nil {
		t.Fatalf("bench output is not JSON: %v\n%s", err, out)
	}
	if len(sum.Errors) > 0 {
		t.Errorf("bench errors: %v", sum.Errors)
	}
	want := map[string]int{"RunPodSandbox": 4, "CreateContainer": 4, "StartContainer": 4, "ready": 4, "ExecSync": 4,
		"StopContainer": 4, "RemoveContainer": 4, "StopPodSandbox": 4, "RemovePodSandbox": 4, "total": 4}
	for _, s := range sum.Steps {
		if want[s.Step] != s.N {
			t.Errorf("step %s ran %d times, want %d", s.Step, s.N, want[s.Step])
		}
		if s.P50 <= 0 {
			t.Errorf("step %s: p50 %v", s.Step, s.P50)
		}
		delete(want, s.Step)
		t.Logf("%-16s n=%d p50=%.1fms", s.Step, s.N, s.P50)
	}
	if len(want) > 0 {
		t.Errorf("steps missing from the summary: %v", want)
	}
	if sum.PodsPerSec <= 0 {
		t.Errorf("pods per second = %v", sum.PodsPerSec)
	}
	pods, err := d.Runtime.ListPodSandbox(d.Ctx(t), &runtimeapi.ListPodSandboxRequest{})
	if err != nil || len(pods.Items) != 0 {
		t.Errorf("pods left after bench: %v %v", pods.GetItems(), err)
	}
	ctrs, err := d.Runtime.ListContainers(d.Ctx(t), &runtimeapi.ListContainersRequest{})
	if err != nil || len(ctrs.Containers) != 0 {
		t.Errorf("containers left after bench: %v %v", ctrs.GetContainers(), err)
	}
}
