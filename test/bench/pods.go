package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// runPods starts n pods, each with one busybox `sleep` container, and
// returns their sandbox ids (those it started, also on error).
func runPods(r *runtime, n int, image, pid string) ([]string, error) {
	mode := runtimeapi.NamespaceMode_CONTAINER
	if pid == "pod" {
		mode = runtimeapi.NamespaceMode_POD
	}
	ns := &runtimeapi.NamespaceOption{Pid: mode}
	var ids []string
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cfg := &runtimeapi.PodSandboxConfig{
			Metadata: &runtimeapi.PodSandboxMetadata{Name: fmt.Sprintf("mem-%d", i), Namespace: "bench-mem", Uid: fmt.Sprintf("mem-%d-%d", i, time.Now().UnixNano())},
			Hostname: fmt.Sprintf("mem-%d", i),
			Linux: &runtimeapi.LinuxPodSandboxConfig{
				SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: ns},
			},
		}
		err := func() error {
			defer cancel()
			pod, err := r.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
			if err != nil {
				return err
			}
			ids = append(ids, pod.PodSandboxId)
			ctr, err := r.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
				PodSandboxId: pod.PodSandboxId, SandboxConfig: cfg,
				Config: &runtimeapi.ContainerConfig{
					Metadata: &runtimeapi.ContainerMetadata{Name: "sleep"},
					Image:    &runtimeapi.ImageSpec{Image: image, UserSpecifiedImage: image}, // as kubelet; CRI-O needs it
					Command:  []string{"sleep", "3600"},
					Linux: &runtimeapi.LinuxContainerConfig{
						SecurityContext: &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: ns},
					},
				},
			})
			if err != nil {
				return err
			}
			_, err = r.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: ctr.ContainerId})
			return err
		}()
		if err != nil {
			return ids, fmt.Errorf("%s: pod %d: %w", r.name, i, err)
		}
	}
	return ids, nil
}

// removePods stops and removes the pods, as kubelet does: each
// container first (StopContainer, no grace period: the bench's `sleep`
// ignores SIGTERM as pid 1), then the pod. CRI-O's StopPodSandbox gives
// a running container minutes to exit on SIGTERM; Berth's and
// containerd's kill it.
func removePods(r *runtime, ids []string) error {
	var errs []error
	for _, id := range ids {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cs, err := r.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{
			Filter: &runtimeapi.ContainerFilter{PodSandboxId: id}})
		if err != nil {
			errs = append(errs, err)
		}
		for _, c := range cs.GetContainers() {
			if c.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
				continue
			}
			if _, err := r.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: c.Id, Timeout: 0}); err != nil {
				errs = append(errs, err)
			}
		}
		if _, err := r.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
			errs = append(errs, err)
		}
		if _, err := r.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
			errs = append(errs, err)
		}
		cancel()
	}
	return errors.Join(errs...)
}
