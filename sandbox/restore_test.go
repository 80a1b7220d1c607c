package sandbox

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/berth-cri/berth/errdefs"
	"github.com/berth-cri/berth/ids"
)

// A crash in RunPodSandbox after the pod's directory was made but before
// its first record was written leaves a directory with no record (maybe
// with the atomic writer's temporary file): the next start removes it. A
// directory whose record cannot be read stays for a person to look at.
func TestRestoreRemovesPodDirWithoutRecord(t *testing.T) {
	requireRoot(t)
	base := t.TempDir()
	opts := Options{
		Root:    filepath.Join(base, "root"),
		RunRoot: filepath.Join(base, "run"),
		Network: NetworkOptions{ConfDir: filepath.Join(base, "cni"), CacheDir: filepath.Join(base, "cache")},
	}
	podsDir := filepath.Join(opts.Root, "pods")
	noRecord, unreadable := filepath.Join(podsDir, ids.New()), filepath.Join(podsDir, ids.New())
	for _, d := range []string{noRecord, unreadable} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(noRecord, "."+recordFile+".tmp-123"), []byte("{"), 0o600)
	os.WriteFile(filepath.Join(unreadable, recordFile), []byte("{"), 0o600)

	m, err := New(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := os.Stat(noRecord); !os.IsNotExist(err) {
		t.Errorf("pod dir without a record survived the restart: %v", err)
	}
	if _, err := os.Stat(filepath.Join(unreadable, recordFile)); err != nil {
		t.Errorf("pod dir with an unreadable record was removed: %v", err)
	}
	if m.Count() != 0 {
		t.Errorf("%d pods restored, want 0", m.Count())
	}
}

// A record written by a newer berthd, whose CRI config has fields this one
// does not know, still restores.
func TestReadRecordIgnoresUnknownConfigFields(t *testing.T) {
	id := ids.New()
	m := &Manager{records: newRecordStore(t.TempDir())}
	p := m.recordPath(id)
	rec := `{"version":1,"id":"` + id + `","state":"ready",` +
		`"config":{"metadata":{"name":"n","namespace":"ns","uid":"u"},"fieldFromTheFuture":{"x":1}}}`
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(rec), 0o600); err != nil {
		t.Fatal(err)
	}
	r, cfg, err := m.readRecord(id)
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != id || cfg.GetMetadata().GetName() != "n" {
		t.Fatalf("record %+v, config %v", r.Sandbox, cfg)
	}
}

// Pods made, retried, stopped and removed concurrently (kubelet works on
// many pods at once) leave nothing; run with -race.
func TestConcurrentCreateStopRemove(t *testing.T) {
	m := newBridgeManager(t)
	ctx := t.Context()
	done := make(chan struct{})
	readers := make(chan struct{})
	go func() {
		defer close(readers)
		for {
			select {
			case <-done:
				return
			default:
			}
			for _, sb := range m.List() {
				m.Get(sb.ID[:8])
			}
		}
	}()
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Two calls per name: the second is a kubelet retry or an
			// already-exists.
			sb, err := m.Create(ctx, CreateRequest{Config: benchPodConfig(i % 3), RuntimeHandler: "runc"})
			if errdefs.IsAlreadyExists(err) {
				return
			}
			if err != nil {
				t.Error(err)
				return
			}
			for range 2 {
				if err := m.Stop(ctx, sb.ID, nil); err != nil {
					t.Error(err)
				}
			}
			for range 2 {
				if err := m.Remove(ctx, sb.ID, nil); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	<-readers
	if n := m.Count(); n != 0 {
		t.Errorf("%d pods left", n)
	}
}
