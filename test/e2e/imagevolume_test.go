package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/test/testimage"
)

// Image volumes (Mount.image, KEP-4639): an image mounted read-only into
// a container, whole or by sub path, kept while the container uses it.
func TestImageVolumes(t *testing.T) {
	e := startContainerEnv(t)
	_, volRef, _ := e.push(t, "volume:1", testimage.Spec{Name: "volume-content"})
	volID := e.mustPull(t, volRef)
	volume := func(path, sub string, readonly bool) *runtimeapi.Mount {
		return &runtimeapi.Mount{ContainerPath: path, Readonly: readonly, ImageSubPath: sub,
			Image: &runtimeapi.ImageSpec{Image: volID, UserSpecifiedImage: volRef}}
	}
	forEachHandler(t, e.d, func(t *testing.T, handler string) {
		pod := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)
		cfg := e.config("vol", "sleep", "3600")
		cfg.Mounts = []*runtimeapi.Mount{volume("/mnt/image-volume", "", true), volume("/mnt/etc-only", "etc", true)}
		id := e.run(t, pod, cfg)

		if r := e.exec(t, id, 10, "cat", "/mnt/image-volume/etc/berth-image"); r.ExitCode != 0 || !strings.Contains(string(r.Stdout), "name=volume-content") {
			t.Errorf("image content at the mount: exit %d %q %q", r.ExitCode, r.Stdout, r.Stderr)
		}
		if r := e.exec(t, id, 10, "cat", "/mnt/etc-only/berth-image"); r.ExitCode != 0 {
			t.Errorf("sub path etc: exit %d %q", r.ExitCode, r.Stderr)
		}
		if r := e.exec(t, id, 10, "touch", "/mnt/image-volume/written"); r.ExitCode == 0 {
			t.Error("the image volume is writable")
		}
		if r := e.exec(t, id, 10, "/mnt/image-volume/bin/ls", "/mnt/image-volume"); r.ExitCode != 0 {
			t.Errorf("binary from the image volume: exit %d %q (noexec?)", r.ExitCode, r.Stderr)
		}
		var found bool
		for _, m := range e.status(t, id).Mounts {
			if m.ContainerPath == "/mnt/image-volume" {
				found = true
				if m.GetImage().GetImageRef() != volID || m.GetImage().GetImage() != volID {
					t.Errorf("status mount image = %v, want image and image_ref %s", m.GetImage(), volID)
				}
			}
		}
		if !found {
			t.Error("the image volume is not in ContainerStatus mounts")
		}
		// The image stays while the container uses it.
		if err := e.remove(t, volRef); status.Code(err) != codes.FailedPrecondition {
			t.Errorf("RemoveImage of a mounted image volume: %v, want FailedPrecondition", err)
		}

		// Refusals leave nothing behind in the store.
		before := e.storeContainers(t)
		for name, m := range map[string]*runtimeapi.Mount{
			"writable":          volume("/mnt/v", "", false),
			"missing sub path":  volume("/mnt/v", "not-existing", true),
			"sub path climbing": volume("/mnt/v", "../../../../../etc", true),
		} {
			cfg := e.config("refused-"+strings.ReplaceAll(name, " ", "-"), "true")
			cfg.Mounts = []*runtimeapi.Mount{m}
			if _, err := e.tryCreate(t, pod, cfg); status.Code(err) != codes.InvalidArgument {
				t.Errorf("%s: got %v, want InvalidArgument", name, err)
			}
		}
		if after := e.storeContainers(t); after != before {
			t.Errorf("refused image volumes left store containers: %d before, %d after", before, after)
		}
	})
}

// storeContainers counts the containers (root filesystems and image
// volumes) in berthd's store, from the store's own records.
func (e *imageEnv) storeContainers(t *testing.T) int {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(e.d.Root, "storage", "*-containers", "containers.json"))
	n := 0
	for _, m := range matches {
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		var ctrs []json.RawMessage
		if len(strings.TrimSpace(string(b))) > 0 {
			if err := json.Unmarshal(b, &ctrs); err != nil {
				t.Fatalf("%s: %v", m, err)
			}
		}
		n += len(ctrs)
	}
	return n
}
