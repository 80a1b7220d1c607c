package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// testdata/records-v1 is a pod record as berthd wrote it before the
// record store (commit 485c30a, captured from a real berthd in
// TestUpgradeInPlaceKeepsRunningPods's first half: a ready pod with an
// infra, its cgroup and network). It is today's version: it loads whole
// and saves back the same JSON (every key and value; the keys' order
// moved when Sandbox was split into Definition and Status, and JSON
// objects have none), so nothing changed on disk that a reader sees.
func TestRecordV1RoundTrips(t *testing.T) {
	const id = "9ab757a770b06493178b04fa620e9bea81185be0a9f78b6a91c216cd274a42ca"
	want, err := os.ReadFile(filepath.Join("testdata", "records-v1", id, recordFile))
	if err != nil {
		t.Fatal(err)
	}
	m := &Manager{records: newRecordStore(t.TempDir())}
	if err := os.MkdirAll(filepath.Join(m.records.Dir, id), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m.recordPath(id), want, 0o600); err != nil {
		t.Fatal(err)
	}
	rec, cfg, err := m.readRecord(id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != StateReady || !rec.Infra || rec.Network == nil || !rec.Network.Attached || rec.Cgroup == nil ||
		cfg.GetMetadata().GetNamespace() != "e2e" || rec.BootID == "" {
		t.Fatalf("record %+v, config %v", rec, cfg)
	}
	m.bootID = rec.BootID
	sb := rec.Sandbox.Clone()
	sb.Config = cfg
	if err := m.writeRecord(&pod{cgroup: rec.Cgroup, net: rec.Network}, sb); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(m.recordPath(id))
	if err != nil {
		t.Fatal(err)
	}
	var gotV, wantV any
	if err := json.Unmarshal(got, &gotV); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(want, &wantV); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotV, wantV) {
		t.Errorf("saved back differently:\n%s\nwas\n%s", got, want)
	}
}

// A pod's status changes through update, recorded before published; its
// definition, once recorded, cannot change, and a refused change leaves
// both the record and the published pod as they were.
func TestUpdateRecordsStatusKeepsDefinition(t *testing.T) {
	const id = "1111111111111111111111111111111111111111111111111111111111111111"
	m := &Manager{records: newRecordStore(t.TempDir()), pods: map[string]*pod{}}
	if err := os.MkdirAll(filepath.Join(m.records.Dir, id), 0o700); err != nil {
		t.Fatal(err)
	}
	sb := &Sandbox{Definition: Definition{ID: id, Hostname: "h"}, Status: Status{State: StateCreating}}
	p := &pod{sb: sb}
	m.pods[id] = p
	ctx := context.Background()
	if err := m.save(ctx, p, sb); err != nil {
		t.Fatalf("first record: %v", err)
	}
	got, err := m.update(ctx, p, func(st *Status) error { st.State, st.IPs = StateReady, []string{"10.0.0.2"}; return nil })
	if err != nil || got.State != StateReady {
		t.Fatalf("update: %v, %+v", err, got)
	}
	rec, _, err := m.readRecord(id)
	if err != nil || rec.State != StateReady || len(rec.IPs) != 1 {
		t.Fatalf("recorded %+v, %v", rec, err)
	}

	changed := m.current(p)
	changed.Hostname = "other"
	changed.State = StateNotReady
	if err := m.save(ctx, p, changed); err == nil {
		t.Fatal("a record with another definition was saved")
	}
	if _, err := m.update(ctx, p, func(st *Status) error { st.State = StateNotReady; return errors.New("no") }); err == nil {
		t.Fatal("a failed change was reported done")
	}
	rec, _, _ = m.readRecord(id)
	if cur := m.current(p); cur.State != StateReady || cur.Hostname != "h" || rec.State != StateReady || rec.Hostname != "h" {
		t.Errorf("after refused changes: published %s/%s, recorded %s/%s; want ready/h both", cur.State, cur.Hostname, rec.State, rec.Hostname)
	}
}
