package e2e

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/test/framework"
	"github.com/berth-cri/berth/test/testimage"
)

// smallFS mounts a tmpfs of size at dir (made here); the test's cleanup,
// which runs after berthd's teardown, unmounts what is left below it.
func smallFS(t *testing.T, dir, size string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		t.Skipf("tmpfs at %s: %v", dir, err)
	}
	t.Cleanup(func() {
		infos, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
		for i := len(infos) - 1; i >= 0; i-- {
			unix.Unmount(infos[i].Mountpoint, unix.MNT_DETACH)
		}
	})
}

// fill writes dir's filesystem full and returns the function that frees
// it again.
func fill(t *testing.T, dir string) (free func()) {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for {
		if _, err = f.Write(buf); err != nil {
			break
		}
	}
	for n := len(buf) / 2; n > 0 && errors.Is(err, syscall.ENOSPC); n /= 2 {
		_, err = f.Write(buf[:n])
		if err == nil {
			n *= 2
		}
	}
	f.Close()
	return func() {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
}

// wantNoSpace checks err is ResourceExhausted and names a path under dir.
func wantNoSpace(t *testing.T, what string, err error, dir string) {
	t.Helper()
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), dir) {
		t.Errorf("%s on a full %s: %v, want ResourceExhausted naming a path there", what, dir, err)
	}
}

// entries lists dir's names (none if it does not exist).
func entries(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// A full disk under the root (images, records) and under the run root
// (bundles, pins), met by a pull, a RunPodSandbox, a CreateContainer and
// a record write: each gets ResourceExhausted naming the path, leaves
// nothing half made and loses no record; all works again once space is
// freed, and after a restart of berthd.
func TestFullDisk(t *testing.T) {
	framework.RequireRoot(t)
	base, err := os.MkdirTemp("/tmp", "bf")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	root, run := filepath.Join(base, "root"), filepath.Join(base, "run")
	smallFS(t, root, "96m")
	smallFS(t, run, "16m")

	reg := testimage.StartRegistry(t, testimage.RegistryOptions{})
	conf := testimage.WriteRegistriesConf(t, testimage.ConfOptions{Insecure: []string{reg.Host}})
	d := framework.StartDaemon(t, framework.Options{ConfigTOML: fmt.Sprintf("root = %q\nrunroot = %q\n\n[image]\nregistries_conf = %q\n", root, run, conf)})
	e := &ctrEnv{imageEnv: &imageEnv{d: d, reg: reg}, podConfigs: map[string]*runtimeapi.PodSandboxConfig{}}
	lo := `{"cniVersion":"1.0.0","name":"loopback-only","plugins":[{"type":"loopback"}]}`
	if err := os.WriteFile(filepath.Join(d.CNIConfDir, "10-lo.conflist"), []byte(lo), 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := testimage.Busybox(testimage.Spec{Name: "full", Cmd: []string{"/bin/sh"}})
	if err != nil {
		t.Fatal(err)
	}
	_, e.image = reg.Push(t, "busybox:1.0", img)
	handlers := handlerNames(t)
	if len(handlers) == 0 {
		t.Skip("no runtime handler")
	}
	ctx := d.Ctx(t)
	pull := func() error {
		_, err := d.Image.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: e.image}})
		return err
	}
	images := func() int {
		resp, err := d.Image.ListImages(ctx, &runtimeapi.ListImagesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return len(resp.Images)
	}

	// A pull.
	free := fill(t, root)
	wantNoSpace(t, "PullImage", pull(), root)
	if n := images(); n != 0 {
		t.Errorf("%d images after a pull that found the disk full", n)
	}
	if left := entries(filepath.Join(root, "storage", "pull-tmp")); len(left) != 0 {
		t.Errorf("a failed pull left %v in pull-tmp", left)
	}
	free()
	if err := pull(); err != nil {
		t.Fatalf("PullImage with space again: %v", err)
	}

	// A RunPodSandbox: on a full root, then a full run root.
	pods := func() int {
		resp, err := d.Runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return len(resp.Items)
	}
	noop := func(*runtimeapi.PodSandboxConfig) {}
	for _, dir := range []string{root, run} {
		free := fill(t, dir)
		_, err := e.podWith(t, handlers[0], noop)
		wantNoSpace(t, "RunPodSandbox", err, dir)
		free()
		if n := pods(); n != 0 {
			t.Errorf("%d pods after a RunPodSandbox that found %s full", n, dir)
		}
		if left := entries(filepath.Join(root, "pods")); len(left) != 0 {
			t.Errorf("pod directories left under the root: %v", left)
		}
	}
	pod, err := e.podWith(t, handlers[0], noop)
	if err != nil {
		t.Fatalf("RunPodSandbox with space again: %v", err)
	}

	// A CreateContainer: on a full root, then a full run root.
	ctrs := func() int {
		resp, err := d.Runtime.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return len(resp.Containers)
	}
	// The pod's infra has a record of its own there; the store's layers.
	records := entries(filepath.Join(root, "containers"))
	layers := entries(filepath.Join(root, "storage", "overlay"))
	for _, dir := range []string{root, run} {
		free := fill(t, dir)
		_, err := e.tryCreate(t, pod, e.config("full", "sleep", "3600"))
		wantNoSpace(t, "CreateContainer", err, dir)
		free()
		if n := ctrs(); n != 0 {
			t.Errorf("%d containers after a CreateContainer that found %s full", n, dir)
		}
		if left := entries(filepath.Join(root, "containers")); !slices.Equal(left, records) {
			t.Errorf("container records %v after a failed create, want %v", left, records)
		}
		if left := entries(filepath.Join(root, "storage", "overlay")); !slices.Equal(left, layers) {
			t.Errorf("layers %v after a failed create, want %v", left, layers)
		}
	}
	id := e.run(t, pod, e.config("sleeper", "sleep", "3600"))

	// A record write: StopContainer on a full root.
	free = fill(t, root)
	_, err = d.Runtime.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 0})
	if err != nil {
		wantNoSpace(t, "StopContainer", err, root)
	}
	free()
	e.stop(t, id, 0)
	if st := e.status(t, id); st.State != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Errorf("container after the stop: %v", st.State)
	}

	// And after a restart, every record is there and readable.
	if err := d.Stop(t); err != nil {
		t.Fatal(err)
	}
	d.Restart(t)
	if n := pods(); n != 1 {
		t.Errorf("%d pods after the restart, want 1", n)
	}
	if st := e.status(t, id); st.State != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Errorf("container after the restart: %v", st.State)
	}
	e.run(t, pod, e.config("again", "sleep", "3600"))
}
