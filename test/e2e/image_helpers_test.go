package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/test/framework"
	"github.com/berth-cri/berth/test/testimage"
)

// imageEnv is a berthd and a registry on 127.0.0.1 it pulls from.
type imageEnv struct {
	d   *framework.Daemon
	reg *testimage.Registry
}

type imageEnvOptions struct {
	registry testimage.RegistryOptions
	// conf writes registries.conf; default: the registry is insecure
	// (plain HTTP) and nothing else.
	conf func(host string) testimage.ConfOptions
	// toml is added to berth.toml.
	toml string
}

func startImageEnv(t *testing.T, o imageEnvOptions) *imageEnv {
	t.Helper()
	framework.RequireRoot(t)
	reg := testimage.StartRegistry(t, o.registry)
	co := testimage.ConfOptions{Insecure: []string{reg.Host}}
	if o.conf != nil {
		co = o.conf(reg.Host)
	}
	conf := testimage.WriteRegistriesConf(t, co)
	d := framework.StartDaemon(t, framework.Options{ConfigTOML: fmt.Sprintf(`
[image]
registries_conf = %q
pull_retries = 1
%s
`, conf, o.toml)})
	return &imageEnv{d: d, reg: reg}
}

// push builds and pushes a busybox image; it returns the manifest
// digest, the full reference and the image ID berthd will report.
func (e *imageEnv) push(t *testing.T, repoTag string, spec testimage.Spec) (digest, ref, id string) {
	t.Helper()
	img, err := testimage.Busybox(spec)
	if err != nil {
		t.Fatal(err)
	}
	digest, ref = e.reg.Push(t, repoTag, img)
	if id, err = testimage.ConfigDigest(img); err != nil {
		t.Fatal(err)
	}
	return digest, ref, id
}

func (e *imageEnv) pull(t *testing.T, ref string, auth *runtimeapi.AuthConfig) (string, error) {
	t.Helper()
	resp, err := e.d.Image.PullImage(e.d.Ctx(t), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}, Auth: auth})
	if err != nil {
		return "", err
	}
	return resp.ImageRef, nil
}

func (e *imageEnv) mustPull(t *testing.T, ref string) string {
	t.Helper()
	id, err := e.pull(t, ref, nil)
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	return id
}

// status is ImageStatus's image, nil when berthd does not know ref.
func (e *imageEnv) status(t *testing.T, ref string) *runtimeapi.Image {
	t.Helper()
	resp, err := e.d.Image.ImageStatus(e.d.Ctx(t), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	if err != nil {
		t.Fatalf("ImageStatus %s: %v", ref, err)
	}
	return resp.Image
}

func (e *imageEnv) remove(t *testing.T, ref string) error {
	t.Helper()
	_, err := e.d.Image.RemoveImage(e.d.Ctx(t), &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	return err
}

func (e *imageEnv) listImages(t *testing.T) []*runtimeapi.Image {
	t.Helper()
	resp, err := e.d.Image.ListImages(e.d.Ctx(t), &runtimeapi.ListImagesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Images
}

// storeLayers counts the layers in berthd's store, read from the store's
// own records, whatever the driver.
func (e *imageEnv) storeLayers(t *testing.T) int {
	t.Helper()
	graph := filepath.Join(e.d.Root, "storage")
	matches, _ := filepath.Glob(filepath.Join(graph, "*-layers", "layers.json"))
	n := 0
	for _, m := range matches {
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		var layers []json.RawMessage
		if len(strings.TrimSpace(string(b))) > 0 {
			if err := json.Unmarshal(b, &layers); err != nil {
				t.Fatalf("%s: %v", m, err)
			}
		}
		n += len(layers)
	}
	return n
}

// waitEmptyStore waits until berthd has no image and no layer: the
// cleanup after a failed pull runs as its download ends.
func (e *imageEnv) waitEmptyStore(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		imgs, layers := len(e.listImages(t)), e.storeLayers(t)
		if imgs == 0 && layers == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("store not empty a minute after a failed pull: %d images, %d layers", imgs, layers)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitLayers waits until the store holds at least n layers.
func (e *imageEnv) waitLayers(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for e.storeLayers(t) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the store never reached %d layers", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// berthctl runs berthctl against the daemon and returns its stdout.
func (e *imageEnv) berthctl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(e.d.BinDir, "berthctl"), append([]string{"-endpoint", e.d.Socket}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("berthctl %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}
