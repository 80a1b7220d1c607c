package e2e

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// checkpointAnnotation is the manifest annotation CRI-O and Podman put on
// an image made of a checkpoint archive (`buildah config --annotation`).
const checkpointAnnotation = "io.kubernetes.cri-o.annotations.checkpoint.name"

// checkpointImage is what `buildah from scratch; buildah add $c
// archive.tar; buildah config --annotation ...=counter $c; buildah
// commit` makes: an OCI image whose layers are the given tars (buildah
// unpacks the archive into one), annotated as a checkpoint of "counter".
func checkpointImage(t *testing.T, layers ...string) v1.Image {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for _, p := range layers {
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return os.Open(p) },
			tarball.WithMediaType(types.OCILayer))
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return mutate.Annotations(img, map[string]string{checkpointAnnotation: "counter"}).(v1.Image)
}

// TestRestoreContainerFromImage restores a checkpoint that reached the
// node as an image, as CRI-O does: kubelet pulls the image the pod names,
// then CreateContainer with it restores the container.
func TestRestoreContainerFromImage(t *testing.T) {
	e := startCheckpointEnv(t)
	handler := handlerNames(t)[0]
	archive, saved := e.checkpointCounter(t, handler)
	_, ref := e.reg.Push(t, "checkpoints/counter:1", checkpointImage(t, archive))
	e.mustPull(t, ref)
	if got := e.imageEnv.status(t, ref); got == nil {
		t.Fatalf("the checkpoint image %s is not listed after its pull", ref)
	}

	pod := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)
	id := e.create(t, pod, e.restoreConfig(ref))
	st := e.status(t, id)
	if st.State != runtimeapi.ContainerState_CONTAINER_CREATED {
		t.Fatalf("after CreateContainer: %v, want created", st.State)
	}
	// The container runs the checkpointed container's image, not the
	// checkpoint image (which holds no root filesystem).
	if st.Image.GetImage() != e.image {
		t.Errorf("restored container's image %q, want the checkpoint's %q", st.Image.GetImage(), e.image)
	}
	e.start(t, id)
	logPath := e.status(t, id).LogPath
	waitFor(t, func() bool { return lastCount(t, logPath) >= saved+5 })
	counts := strings.Fields(logText(readLog(t, logPath), "stdout"))
	if i := slices.Index(counts, "1"); i > 0 {
		t.Fatalf("the restored container counted from 1 again: %v", counts)
	}
	if out := e.exec(t, id, 10, "cat", "/added-by-counter"); strings.TrimSpace(string(out.Stdout)) != "kept" {
		t.Errorf("/added-by-counter in the restored container: %q %q", out.Stdout, out.Stderr)
	}
	e.stop(t, id, 5)
	e.removeLeavingNothing(t, id)

	// An ordinary image is not taken for a checkpoint: the same
	// counter from the busybox image starts from 1.
	plain := e.run(t, pod, e.config("plain", "sh", "-c", counterScript))
	plainLog := e.status(t, plain).LogPath
	waitFor(t, func() bool { return lastCount(t, plainLog) >= 1 })
	if first := strings.Fields(logText(readLog(t, plainLog), "stdout"))[0]; first != "1" {
		t.Errorf("a container from the ordinary image began at %s, want 1", first)
	}
}

// TestRestoreContainerFromHostileImage: a checkpoint image's layer is as
// untrusted as an archive: refused before anything is made, and so is an
// annotated image with more than one layer.
func TestRestoreContainerFromHostileImage(t *testing.T) {
	e := startCheckpointEnv(t)
	handler := handlerNames(t)[0]
	archive, _ := e.checkpointCounter(t, handler)
	good := readTar(t, archive)
	dir := t.TempDir()
	hostile := filepath.Join(dir, "hostile.tar")
	writeArchive(t, hostile, good, tarEntry{tar.Header{Name: "escape", Typeflag: tar.TypeSymlink, Linkname: "/etc"}, nil})
	second := filepath.Join(dir, "second.tar")
	writeArchive(t, second, map[string][]byte{"extra": []byte("x")})
	pod := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)

	for _, tc := range []struct {
		what   string
		layers []string
		reason string
	}{
		{"a symlink in the layer", []string{hostile}, "symlink"},
		{"two layers", []string{archive, second}, "more than one layer"},
	} {
		t.Run(tc.what, func(t *testing.T) {
			_, ref := e.reg.Push(t, "checkpoints/hostile:"+strings.ReplaceAll(tc.what, " ", "-"), checkpointImage(t, tc.layers...))
			e.mustPull(t, ref)
			before := e.nodeState(t)
			_, err := e.tryCreate(t, pod, e.restoreConfig(ref))
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("restore from %s: %v, want InvalidArgument naming %q", tc.what, err, tc.reason)
			}
			t.Logf("refused: %v", err)
			if after := e.nodeState(t); !bytes.Equal([]byte(strings.Join(before, "\n")), []byte(strings.Join(after, "\n"))) {
				t.Errorf("a refused restore changed the node:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}
