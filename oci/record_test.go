package oci

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/record"
)

// testdata/records-v0 are container records as berthd wrote them before
// records had versions (commit 485c30a): captured from a real berthd in
// TestUpgradeInPlaceKeepsRunningPods's first half, a pod with an infra
// and a running (with resources), an exited and a created container.
const (
	v0Infra   = "9ab757a770b06493178b04fa620e9bea81185be0a9f78b6a91c216cd274a42ca"
	v0Running = "b33cbb3b68fe3911e964fc72f6a82985bc444d6aa97cda6d80eee36d8e644107"
	v0Exited  = "205ccd7a7eb8bbb5609a5c5904a8513cab9b592ac5f921d4215ea23bb5b89753"
	v0Created = "35da35743d14be87c93eec8e6ff6dc433eef593ce5d72ba89fd9fdda0ff67ae8"
)

// v0Resources are the running container's resources in its request.
var v0Resources = &runtimeapi.LinuxContainerResources{
	CpuPeriod: 100000, CpuQuota: 50000, CpuShares: 512, MemoryLimitInBytes: 64 << 20, OomScoreAdj: 100,
}

// copyV0Records puts the version 0 records under root/containers.
func copyV0Records(t *testing.T, root string) string {
	t.Helper()
	dir := filepath.Join(root, "containers")
	for _, id := range []string{v0Infra, v0Running, v0Exited, v0Created} {
		b, err := os.ReadFile(filepath.Join("testdata", "records-v0", id, "container.json"))
		must(t, err)
		must(t, os.MkdirAll(filepath.Join(dir, id), 0o700))
		must(t, os.WriteFile(filepath.Join(dir, id, "container.json"), b, 0o600))
	}
	return dir
}

// A version 0 record loads whole, its resources read as encoding/json
// wrote them, and is saved back at version 1 with them in protojson; the
// migrated file loads to the same record.
func TestRecordMigratesFromVersion0(t *testing.T) {
	store := newRecordStore(copyV0Records(t, t.TempDir()))
	var r Record
	must(t, store.Load(v0Running, &r))
	if r.ID != v0Running || r.Name != "running" || r.State != StateRunning || r.PodID != v0Infra ||
		r.MonitorPID == 0 || r.MonitorStart == 0 || !r.SharedPID || r.Runtime.Handler != "berth" {
		t.Errorf("migrated record: %+v", r)
	}
	if !proto.Equal(r.Resources, v0Resources) {
		t.Errorf("resources %v, want %v", r.Resources, v0Resources)
	}
	b, err := os.ReadFile(store.Path(v0Running))
	must(t, err)
	var onDisk struct {
		Version   *int            `json:"version"`
		Resources json.RawMessage `json:"resources"`
	}
	must(t, json.Unmarshal(b, &onDisk))
	if onDisk.Version == nil || *onDisk.Version != recordVersion {
		t.Errorf("the migrated record was not saved at version %d:\n%s", recordVersion, b)
	}
	if !strings.Contains(string(onDisk.Resources), `"cpuShares": "512"`) {
		t.Errorf("resources on disk are not protojson: %s", onDisk.Resources)
	}
	var again Record
	must(t, store.Load(v0Running, &again))
	if !proto.Equal(again.Resources, r.Resources) {
		t.Errorf("reloaded resources %v, want %v", again.Resources, r.Resources)
	}
	again.Resources, r.Resources = nil, nil
	if a, b := mustJSON(t, again), mustJSON(t, r); a != b {
		t.Errorf("the migrated record reloads differently:\n%s\nwas\n%s", a, b)
	}

	var e Record
	must(t, store.Load(v0Exited, &e))
	if e.State != StateExited || e.ExitCode != 7 || e.Reason != ReasonError || e.FinishedAt.IsZero() || e.Resources != nil {
		t.Errorf("migrated exited record: %+v", e.Status)
	}
}

// A berthd started on a root of version 0 records restores every
// container from them: the exited one as it was, the created and running
// ones (whose monitors are not there: these are files, not a node) as
// lost, their metadata and resources kept; each record is at version 1
// afterwards.
func TestRestoreFromVersion0Records(t *testing.T) {
	base := t.TempDir()
	copyV0Records(t, filepath.Join(base, "root"))
	m, found, err := NewManager(context.Background(), Options{
		Root: filepath.Join(base, "root"), RunRoot: filepath.Join(base, "run"),
		MonitorPath: "/nonexistent/berth-monitor", Rootfs: &fakeRootfs{t: t, roots: map[string]string{}},
	})
	must(t, err)
	defer m.Close()
	if len(found) != 2 {
		t.Errorf("steps found: %d, want the exits of the running and the created container", len(found))
	}
	want := map[string]struct {
		state State
		code  int32
	}{v0Infra: {StateExited, 255}, v0Running: {StateExited, 255}, v0Exited: {StateExited, 7}, v0Created: {StateExited, 255}}
	for id, w := range want {
		m.mu.RLock()
		c := m.ctrs[id]
		m.mu.RUnlock()
		if c == nil {
			t.Errorf("%s not restored", id)
			continue
		}
		r := c.Record()
		if r.State != w.state || r.ExitCode != w.code {
			t.Errorf("%s (%s): %s exit %d, want %s exit %d", id[:8], r.Name, r.State, r.ExitCode, w.state, w.code)
		}
		if r.Image == "" && !r.Infra {
			t.Errorf("%s lost its image", r.Name)
		}
		var onDisk map[string]json.RawMessage
		b, err := os.ReadFile(m.records.Path(id))
		must(t, err)
		must(t, json.Unmarshal(b, &onDisk))
		if string(onDisk["version"]) != "1" {
			t.Errorf("%s's record is at version %s after restore", r.Name, onDisk["version"])
		}
	}
	if r, err := m.Get(v0Running); err != nil || !proto.Equal(r.Record().Resources, v0Resources) {
		t.Errorf("running container's resources after restore: %v (%v)", r, err)
	}
}

// Only the status changes through update, and a failed save leaves it as
// it was: what Get answers is what a restart would read.
func TestUpdateRollsBackWhenTheSaveFails(t *testing.T) {
	store := newRecordStore(t.TempDir())
	id := testID()
	c := &Container{
		rec:    Record{Metadata: Metadata{ID: id}, Status: Status{State: StateCreated}},
		exited: make(chan struct{}),
		paths:  paths{store: store, dir: filepath.Join(store.Dir, id)},
	}
	must(t, os.MkdirAll(c.paths.dir, 0o700))
	must(t, c.update(record.Durable, func(st *Status) error {
		st.Restore = &RestoreSource{Archive: "/a"}
		return nil
	}))
	// The record becomes a non-empty directory: the rename onto it fails.
	must(t, os.Remove(c.paths.record()))
	must(t, os.MkdirAll(filepath.Join(c.paths.record(), "x"), 0o700))
	err := c.update(record.Progress, func(st *Status) error {
		st.State = StateRunning
		st.Restore.Done = true
		return nil
	})
	if err == nil {
		t.Fatal("update saved onto a directory")
	}
	if r := c.Record(); r.State != StateCreated || r.Restore.Done {
		t.Errorf("status after a failed save: %+v, want it unchanged", r.Status)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	must(t, err)
	return string(b)
}
