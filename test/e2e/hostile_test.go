package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/test/testimage"
)

// TestHostileRequests sends requests a hostile or broken client could:
// ids that are paths, megabyte strings, ten thousand labels, nested
// messages left out, an image whose /etc/passwd is a FIFO. Each answer
// has its code, berthd keeps serving, and nothing is left behind.
func TestHostileRequests(t *testing.T) {
	e := startContainerEnv(t)
	handlers := handlerNames(t)
	if len(handlers) == 0 {
		t.Skip("no runtime handler")
	}
	d := e.d
	ctx := d.Ctx(t)
	// A pod and a running container to aim the container requests at;
	// they are removed by their own cleanups.
	pod := e.pod(t, handlers[0], runtimeapi.NamespaceMode_CONTAINER)
	ctr := e.run(t, pod, e.config("target", "sleep", "3600"))

	fifoImg, err := testimage.Busybox(testimage.Spec{Name: "fifo-passwd", Cmd: []string{"/bin/sh"},
		Files: []testimage.File{{Path: "/etc/passwd", Mode: os.ModeNamedPipe | 0o644}}})
	if err != nil {
		t.Fatal(err)
	}
	_, fifoRef := e.reg.Push(t, "fifo:1", fifoImg)
	if _, err := d.Image.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: fifoRef}}); err != nil {
		t.Fatalf("pull %s: %v", fifoRef, err)
	}

	mib := strings.Repeat("a", 1<<20)
	manyLabels := make(map[string]string, 10000)
	for i := range 10000 {
		manyLabels[fmt.Sprintf("label-%05d", i)] = "v"
	}
	podCfg := func(mutate func(c *runtimeapi.PodSandboxConfig)) *runtimeapi.PodSandboxConfig {
		c := &runtimeapi.PodSandboxConfig{
			Metadata:     &runtimeapi.PodSandboxMetadata{Name: "hostile", Namespace: "e2e", Uid: "hostile-uid"},
			Hostname:     "hostile",
			LogDirectory: t.TempDir(),
		}
		mutate(c)
		return c
	}
	ctrCfg := func(mutate func(c *runtimeapi.ContainerConfig)) *runtimeapi.ContainerConfig {
		c := e.config("hostile", "true")
		mutate(c)
		return c
	}
	runPod := func(c *runtimeapi.PodSandboxConfig) error {
		_, err := d.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: c, RuntimeHandler: handlers[0]})
		return err
	}
	createCtr := func(podID string, c *runtimeapi.ContainerConfig) error {
		_, err := d.Runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: c, SandboxConfig: e.podConfigs[pod]})
		return err
	}
	for _, tc := range []struct {
		name string
		call func() error
		want codes.Code
	}{
		// Ids that are paths.
		{"PodSandboxStatus ../../etc", func() error {
			_, err := d.Runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: "../../etc"})
			return err
		}, codes.NotFound},
		{"StopPodSandbox /", func() error {
			_, err := d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: "/"})
			return err
		}, codes.OK},
		{"RemovePodSandbox ../..", func() error {
			_, err := d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: "../.."})
			return err
		}, codes.OK},
		{"ContainerStatus ../" + ctr[:12], func() error {
			_, err := d.Runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: "../" + ctr[:12]})
			return err
		}, codes.NotFound},
		{"StartContainer /etc/passwd", func() error {
			_, err := d.Runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: "/etc/passwd"})
			return err
		}, codes.NotFound},
		{"RemoveContainer ..", func() error {
			_, err := d.Runtime.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: ".."})
			return err
		}, codes.OK},
		{"ExecSync in ./" + ctr, func() error {
			_, err := d.Runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: "./" + ctr, Cmd: []string{"true"}})
			return err
		}, codes.NotFound},
		{"ReopenContainerLog ../../var/log", func() error {
			_, err := d.Runtime.ReopenContainerLog(ctx, &runtimeapi.ReopenContainerLogRequest{ContainerId: "../../var/log"})
			return err
		}, codes.NotFound},
		{"CreateContainer in pod ../" + pod[:12], func() error { return createCtr("../"+pod[:12], ctrCfg(func(*runtimeapi.ContainerConfig) {})) }, codes.NotFound},
		{"CreateContainer log path ../../../etc/x", func() error {
			return createCtr(pod, ctrCfg(func(c *runtimeapi.ContainerConfig) { c.LogPath = "../../../etc/hostile.log" }))
		}, codes.InvalidArgument},
		{"CreateContainer named ../x", func() error {
			return createCtr(pod, ctrCfg(func(c *runtimeapi.ContainerConfig) { c.Metadata.Name = "../x" }))
		}, codes.InvalidArgument},

		// Megabyte strings.
		{"RunPodSandbox 1 MiB name", func() error { return runPod(podCfg(func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Name = mib })) }, codes.InvalidArgument},
		{"RunPodSandbox 1 MiB hostname", func() error { return runPod(podCfg(func(c *runtimeapi.PodSandboxConfig) { c.Hostname = mib })) }, codes.InvalidArgument},
		{"CreateContainer 1 MiB name", func() error {
			return createCtr(pod, ctrCfg(func(c *runtimeapi.ContainerConfig) { c.Metadata.Name = mib }))
		}, codes.InvalidArgument},
		{"CreateContainer 1 MiB image", func() error {
			return createCtr(pod, ctrCfg(func(c *runtimeapi.ContainerConfig) { c.Image.Image = mib }))
		}, codes.InvalidArgument},
		{"PullImage 1 MiB reference", func() error {
			_, err := d.Image.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: mib}})
			return err
		}, codes.InvalidArgument},
		{"ExecSync 1 MiB argument", func() error {
			_, err := d.Runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: ctr, Cmd: []string{"true", mib}, Timeout: 30})
			return err
		}, codes.OK},

		// Ten thousand labels: accepted, and gone with the pod.
		{"RunPodSandbox 10000 labels", func() error {
			return runPod(podCfg(func(c *runtimeapi.PodSandboxConfig) { c.Labels = manyLabels; c.Metadata.Name = "many-labels" }))
		}, codes.OK},

		// Nested messages left out.
		{"RunPodSandbox no config", func() error {
			_, err := d.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{})
			return err
		}, codes.InvalidArgument},
		{"RunPodSandbox no metadata", func() error { return runPod(podCfg(func(c *runtimeapi.PodSandboxConfig) { c.Metadata = nil })) }, codes.InvalidArgument},
		{"CreateContainer no config", func() error { return createCtr(pod, nil) }, codes.InvalidArgument},
		{"CreateContainer no image", func() error { return createCtr(pod, ctrCfg(func(c *runtimeapi.ContainerConfig) { c.Image = nil })) }, codes.InvalidArgument},
		{"CreateContainer nil mount, env, device", func() error {
			return createCtr(pod, ctrCfg(func(c *runtimeapi.ContainerConfig) {
				c.Mounts = []*runtimeapi.Mount{nil}
				c.Envs = []*runtimeapi.KeyValue{nil}
				c.Devices = []*runtimeapi.Device{nil}
			}))
		}, codes.InvalidArgument},
		{"UpdateContainerResources no linux", func() error {
			_, err := d.Runtime.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{ContainerId: ctr})
			return err
		}, codes.InvalidArgument},
		{"PullImage no image", func() error {
			_, err := d.Image.PullImage(ctx, &runtimeapi.PullImageRequest{})
			return err
		}, codes.InvalidArgument},
		{"ImageStatus no image", func() error {
			_, err := d.Image.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{})
			return err
		}, codes.InvalidArgument},
		{"ExecSync no command", func() error {
			_, err := d.Runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: ctr})
			return err
		}, codes.InvalidArgument},

		// A hostile image: a FIFO as /etc/passwd must not hang the create.
		{"CreateContainer image with a FIFO /etc/passwd", func() error {
			return createCtr(pod, ctrCfg(func(c *runtimeapi.ContainerConfig) {
				c.Image.Image = fifoRef
				c.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{RunAsUsername: "nobody"}}
			}))
		}, codes.InvalidArgument},
		// A huge stop timeout does not wrap to "kill at once": the call
		// waits (here until its own deadline) for a container that ignores
		// SIGTERM... which `sleep` as PID 1 does.
		{"StopContainer timeout 2^64 ns + ...", func() error {
			short, cancel := context.WithTimeout(ctx, 3e9)
			defer cancel()
			_, err := d.Runtime.StopContainer(short, &runtimeapi.StopContainerRequest{ContainerId: ctr, Timeout: 18446744074})
			return err
		}, codes.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if got := status.Code(err); got != tc.want {
				t.Errorf("got %v (%v), want %v", got, truncate(err), tc.want)
			}
		})
	}

	// berthd still serves, and the hostile calls left nothing: the only
	// pod and container are the test's own (a pod that was accepted is
	// removed, as kubelet would).
	pods, err := d.Runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Fatalf("berthd no longer serves: %v", err)
	}
	for _, p := range pods.Items {
		if p.Id == pod {
			continue
		}
		if p.Metadata.GetName() != "many-labels" {
			t.Errorf("pod left behind: %s %q", p.Id, truncate(fmt.Errorf("%s", p.Metadata.GetName())))
		}
		d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.Id})
		if _, err := d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			t.Errorf("remove pod %s: %v", p.Id, err)
		}
	}
	ctrs, err := d.Runtime.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range ctrs.Containers {
		if c.Id != ctr {
			t.Errorf("container left behind: %s %s", c.Id, c.Metadata.GetName())
		}
	}
	for _, dir := range []string{filepath.Join(d.Root, "containers"), filepath.Join(d.RunRoot, "containers")} {
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 || entries[0].Name() != ctr {
			var names []string
			for _, en := range entries {
				names = append(names, en.Name())
			}
			t.Errorf("%s holds %v, want only %s", dir, names, ctr)
		}
	}
	if _, err := os.Stat("/etc/hostile.log"); err == nil {
		t.Error("a log path left the log directory: /etc/hostile.log exists")
	}
}

// truncate keeps a megabyte-string error readable.
func truncate(err error) string {
	if err == nil {
		return "<nil>"
	}
	s := err.Error()
	if len(s) > 300 {
		return s[:300] + fmt.Sprintf("... (%d bytes)", len(s))
	}
	return s
}
