package sandbox

import (
	"encoding/json"
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
