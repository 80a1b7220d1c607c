package storage

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/berth-cri/berth/test/testimage"
)

// benchImageBytes and benchLayers shape the benchmark image: about
// 100 MB of random (incompressible) data in several layers, on busybox.
const (
	benchImageBytes = 100 << 20
	benchLayers     = 5
)

// BenchmarkPull pulls a ~100 MB, several-layer image from a registry on
// 127.0.0.1 into an empty store, once with Store.Pull and once with
// `skopeo copy docker://... containers-storage:...` (the same libraries,
// as a separate program), so the two times compare directly:
//
//	go test -tags "..." -run '^$' -bench BenchmarkPull -benchtime 5x ./storage/
//
// Store setup and removal are outside the timed part.
func BenchmarkPull(b *testing.B) {
	requireRoot(b)
	defer logrus.SetLevel(logrus.GetLevel())
	logrus.SetLevel(logrus.WarnLevel)
	reg := testimage.StartRegistry(b, testimage.RegistryOptions{})
	img, err := testimage.Big("bench", benchImageBytes, benchLayers)
	if err != nil {
		b.Fatal(err)
	}
	_, ref := reg.Push(b, "bench:1", img)
	var blobBytes int64
	ls, _ := img.Layers()
	for _, l := range ls {
		n, _ := l.Size()
		blobBytes += n
	}
	conf := testimage.WriteRegistriesConf(b, testimage.ConfOptions{Insecure: []string{reg.Host}})

	b.Run("berth", func(b *testing.B) {
		b.SetBytes(blobBytes)
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			dir := b.TempDir()
			s, err := Open(context.Background(), Options{
				GraphRoot: filepath.Join(dir, "graph"), RunRoot: filepath.Join(dir, "run"),
				RegistriesConf: conf,
			})
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if _, err := s.Pull(context.Background(), ref, Auth{}); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			s.store.Shutdown(true)
			b.StartTimer()
		}
	})

	b.Run("skopeo", func(b *testing.B) {
		skopeo, err := exec.LookPath("skopeo")
		if err != nil {
			b.Skip("skopeo not installed")
		}
		b.SetBytes(blobBytes)
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			dir := b.TempDir()
			dest := fmt.Sprintf("containers-storage:[overlay@%s+%s]%s", filepath.Join(dir, "graph"), filepath.Join(dir, "run"), ref)
			cmd := exec.Command(skopeo, "--registries-conf", conf, "copy", "--quiet", "--src-tls-verify=false", "docker://"+ref, dest)
			cmd.Env = append(os.Environ(), "CONTAINERS_STORAGE_CONF=/dev/null")
			b.StartTimer()
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("%s: %v\n%s", cmd, err, out)
			}
			b.StopTimer()
			// The overlay driver bind-mounts its home on itself and
			// skopeo exits without undoing it.
			unix.Unmount(filepath.Join(dir, "graph", "overlay"), unix.MNT_DETACH)
			b.StartTimer()
		}
	})
}
