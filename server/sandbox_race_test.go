package server

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/config"
	"github.com/berth-cri/berth/errdefs"
	"github.com/berth-cri/berth/oci"
	"github.com/berth-cri/berth/sandbox"
)

// newPodServer is a Server with real pod and container managers on
// temporary roots, for pods on the host's network (no CNI, no image).
func newPodServer(t *testing.T) *Server {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates cgroups and mounts")
	}
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Root, cfg.RunRoot = filepath.Join(dir, "root"), filepath.Join(dir, "run")
	cfg.Runtime.CgroupParent = fmt.Sprintf("/berth-srv-test-%08x", rand.Uint32())
	s := &Server{cfg: cfg}
	mgr, _, err := oci.NewManager(t.Context(), oci.Options{Root: cfg.Root, RunRoot: cfg.RunRoot, Host: &oci.Host{}})
	if err != nil {
		t.Fatal(err)
	}
	s.ctr = containerService{mgr: mgr, stopTimeout: func() time.Duration { return 0 }}
	pods, err := sandbox.New(t.Context(), sandbox.Options{
		Root: cfg.Root, RunRoot: cfg.RunRoot, CgroupParent: cfg.Runtime.CgroupParent, HostResolvConf: "/etc/resolv.conf",
		Network: sandbox.NetworkOptions{ConfDir: filepath.Join(dir, "cni"), CacheDir: filepath.Join(dir, "cache")},
		Infra:   infraRunner{s},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.pod.mgr = pods
	t.Cleanup(func() {
		for _, sb := range pods.List() {
			s.RemovePodSandbox(context.Background(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.ID})
		}
		s.Close()
		dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", cfg.Runtime.CgroupParent))
		for _, d := range dirs {
			os.Remove(d)
		}
	})
	return s
}

func hostNetPod(t *testing.T, s *Server, name string) string {
	resp, err := s.RunPodSandbox(t.Context(), &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "test", Uid: "uid-" + name},
		Hostname: name,
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{
				Network: runtimeapi.NamespaceMode_NODE, Ipc: runtimeapi.NamespaceMode_NODE, Pid: runtimeapi.NamespaceMode_CONTAINER,
			},
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.PodSandboxId
}

// A CreateContainer that read the pod (READY) just before StopPodSandbox
// or RemovePodSandbox began registers its call only afterwards: it must
// then find the pod NOTREADY or gone, and make nothing.
func TestCreateAfterPodStopOrRemoveMakesNothing(t *testing.T) {
	s := newPodServer(t)
	req := func(pod string) *runtimeapi.CreateContainerRequest {
		return &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "late"},
			Image:    &runtimeapi.ImageSpec{Image: "busybox"},
		}}
	}

	// The create as CreateContainer makes it, after its own read of the
	// pod.
	create := func(pod string) error {
		_, err := s.ctr.mgr.Create(t.Context(), &oci.CreateRequest{
			Spec:  oci.SpecOptions{Config: req(pod).Config, Pod: &oci.Pod{ID: pod}},
			Begin: func() (func(), error) { return s.beginCreate(pod) },
		})
		return err
	}

	stopped := hostNetPod(t, s, "stopped")
	if _, err := s.StopPodSandbox(t.Context(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: stopped}); err != nil {
		t.Fatal(err)
	}
	if err := create(stopped); !errdefs.Is(err, errdefs.KindFailedPrecondition) {
		t.Errorf("create registered after StopPodSandbox: %v, want FailedPrecondition", err)
	}

	removed := hostNetPod(t, s, "removed")
	if _, err := s.RemovePodSandbox(t.Context(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: removed}); err != nil {
		t.Fatal(err)
	}
	if err := create(removed); !errdefs.IsNotFound(err) {
		t.Errorf("create registered after RemovePodSandbox: %v, want NotFound", err)
	}
	if n := len(s.ctr.mgr.List(nil)); n != 0 {
		t.Errorf("%d containers made in stopped or removed pods", n)
	}
}
