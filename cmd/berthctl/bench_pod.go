package main

import (
	"fmt"
	"os"
	"path/filepath"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// podShape makes the bench's requests look like kubelet's for a
// BestEffort pod with one container, so a runtime is timed on the work a
// node really asks of it: a PID namespace per container unless the pod
// shares one (which needs an infra process), a log directory and a log
// per container, kubelet's masked and read-only paths, its OOM score.
type podShape struct {
	pid    runtimeapi.NamespaceMode // CONTAINER or POD
	logDir string                   // empty: no logs
}

func (sh podShape) namespaces() *runtimeapi.NamespaceOption {
	return &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD, Ipc: runtimeapi.NamespaceMode_POD, Pid: sh.pid}
}

func (sh podShape) pod(i int, uid string) *runtimeapi.PodSandboxConfig {
	name, ns := fmt.Sprintf("bench-%d", i), "berthctl-bench"
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: ns, Uid: uid},
		Hostname: name,
		Labels: map[string]string{
			"io.kubernetes.pod.name": name, "io.kubernetes.pod.namespace": ns, "io.kubernetes.pod.uid": uid,
		},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: sh.namespaces()},
		},
	}
	if sh.logDir != "" {
		cfg.LogDirectory = filepath.Join(sh.logDir, ns+"_"+name+"_"+uid)
	}
	return cfg
}

// makeLogDirs makes the pod's log directory and its container's, as
// kubelet does before RunPodSandbox and CreateContainer (CRI-O's conmon
// opens the log file without making its directory).
func (sh podShape) makeLogDirs(pod *runtimeapi.PodSandboxConfig) error {
	if sh.logDir == "" {
		return nil
	}
	return os.MkdirAll(filepath.Join(pod.LogDirectory, "bench"), 0o755)
}

// kubelet's default masked and read-only paths (the container runtime
// defaults of k8s.io/kubernetes/pkg/securitycontext).
var (
	kubeletMaskedPaths = []string{"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"}
	kubeletReadonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

func (sh podShape) container(image string) *runtimeapi.ContainerConfig {
	cfg := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "bench"},
		// UserSpecifiedImage as kubelet sends it: CRI-O refuses a
		// container without it (it checks the image's signature policy
		// against the name the user wrote).
		Image:   &runtimeapi.ImageSpec{Image: image, UserSpecifiedImage: image},
		Command: []string{"sleep", "3600"},
		Labels:  map[string]string{"io.kubernetes.container.name": "bench"},
		Linux: &runtimeapi.LinuxContainerConfig{
			// BestEffort: the minimum shares, the highest OOM score.
			Resources: &runtimeapi.LinuxContainerResources{CpuPeriod: 100000, CpuShares: 2, OomScoreAdj: 1000},
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: sh.namespaces(),
				MaskedPaths:      kubeletMaskedPaths,
				ReadonlyPaths:    kubeletReadonlyPaths,
			},
		},
	}
	if sh.logDir != "" {
		cfg.LogPath = "bench/0.log"
	}
	return cfg
}
