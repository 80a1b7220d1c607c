package storage

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.podman.io/storage/pkg/reexec"

	"github.com/berth-cri/berth/test/testimage"
)

func TestMain(m *testing.M) {
	// The overlay driver re-executes the test binary to mount long
	// layer stacks.
	if reexec.Init() {
		return
	}
	os.Exit(m.Run())
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts overlay filesystems")
	}
}

// testEnv is a store on private roots and a registry it may pull from.
type testEnv struct {
	reg   *testimage.Registry
	store *Store
	dir   string
	conf  string
}

type envOptions struct {
	registry testimage.RegistryOptions
	conf     func(host string) testimage.ConfOptions
	store    func(*Options)
}

func newEnv(t *testing.T, o envOptions) *testEnv {
	t.Helper()
	requireRoot(t)
	reg := testimage.StartRegistry(t, o.registry)
	co := testimage.ConfOptions{Insecure: []string{reg.Host}}
	if o.conf != nil {
		co = o.conf(reg.Host)
	}
	conf := testimage.WriteRegistriesConf(t, co)
	dir := t.TempDir()
	opts := Options{
		GraphRoot:      filepath.Join(dir, "graph"),
		RunRoot:        filepath.Join(dir, "run"),
		RegistriesConf: conf,
		PullRetries:    1,
		RetryBackoff:   10 * time.Millisecond,
		PullTimeout:    time.Minute,
	}
	if o.store != nil {
		o.store(&opts)
	}
	e := &testEnv{reg: reg, dir: dir, conf: conf}
	e.store = openTestStore(t, opts)
	return e
}

func openTestStore(t *testing.T, opts Options) *Store {
	t.Helper()
	s, err := Open(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Unmount everything so the temp dir can go.
		s.store.Shutdown(true)
	})
	return s
}

// push builds a busybox image from spec, pushes it as repoTag and
// returns its manifest digest, full reference and image ID.
func (e *testEnv) push(t *testing.T, repoTag string, spec testimage.Spec) (digest, ref, id string) {
	t.Helper()
	img, err := testimage.Busybox(spec)
	if err != nil {
		t.Fatal(err)
	}
	digest, ref = e.reg.Push(t, repoTag, img)
	id, err = testimage.ConfigDigest(img)
	if err != nil {
		t.Fatal(err)
	}
	return digest, ref, id
}

// countImages and countLayers look at the store directly.
func countImages(t *testing.T, s *Store) int {
	t.Helper()
	imgs, err := s.store.Images()
	if err != nil {
		t.Fatal(err)
	}
	return len(imgs)
}

func countLayers(t *testing.T, s *Store) int {
	t.Helper()
	ls, err := s.store.Layers()
	if err != nil {
		t.Fatal(err)
	}
	return len(ls)
}
