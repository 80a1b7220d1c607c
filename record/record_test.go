package record

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

type thing struct {
	ID    string `json:"id"`
	Count int    `json:"count"`
}

func (t *thing) RecordID() string { return t.ID }

func newStore(t *testing.T, version int) *Store {
	return &Store{Dir: t.TempDir(), File: "thing.json", Noun: "thing", Version: version}
}

func write(t *testing.T, s *Store, id, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(s.Dir, id), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.Path(id), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// The version is the first key, beside the record's fields, and a record
// reads back as it was saved, whether fsynced or not.
func TestSaveLoad(t *testing.T) {
	s := newStore(t, 3)
	for _, sync := range []Sync{Durable, Progress} {
		if err := os.MkdirAll(filepath.Join(s.Dir, "a"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := s.Save("a", thing{ID: "a", Count: 2}, sync); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(s.Path("a"))
		if want := "{\n  \"version\": 3,\n  \"id\": \"a\",\n  \"count\": 2\n}"; string(b) != want {
			t.Errorf("saved %s, want %s", b, want)
		}
		var got thing
		if err := s.Load("a", &got); err != nil || got != (thing{ID: "a", Count: 2}) {
			t.Errorf("loaded %+v, %v", got, err)
		}
	}
	if err := s.Save("a", struct{}{}, Durable); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(s.Path("a")); string(b) != "{\n  \"version\": 3\n}" {
		t.Errorf("empty record saved as %s", b)
	}
	if err := s.Save("a", []int{1}, Durable); err == nil {
		t.Error("a record that is not an object was saved")
	}
	if err := s.Save("a", map[string]int{"version": 1}, Durable); err == nil {
		t.Error("a record with its own version key was saved")
	}
	if err := s.Save("a", map[string]any{"x": map[string]int{"version": 1}}, Durable); err != nil {
		t.Errorf("a nested version key: %v", err)
	}
}

// An older record goes through Migrate once and is written back at the
// current version; a newer one, or an older one with no migration, is
// refused and left as it is.
func TestLoadVersions(t *testing.T) {
	s := newStore(t, 2)
	var calls []int
	s.Migrate = func(from int, b []byte) ([]byte, error) {
		calls = append(calls, from)
		if from == 0 {
			return []byte(strings.Replace(string(b), `"n"`, `"count"`, 1)), nil
		}
		return b, nil
	}
	write(t, s, "old", `{"id":"old","n":5}`)
	var got thing
	if err := s.Load("old", &got); err != nil || got.Count != 5 {
		t.Fatalf("migrated %+v, %v", got, err)
	}
	if err := s.Load("old", &got); err != nil || got.Count != 5 {
		t.Fatalf("reloaded %+v, %v", got, err)
	}
	if !reflect.DeepEqual(calls, []int{0}) {
		t.Errorf("migrations %v, want one from version 0", calls)
	}
	if b, _ := os.ReadFile(s.Path("old")); !strings.HasPrefix(string(b), "{\n  \"version\": 2,") {
		t.Errorf("not written back at version 2: %s", b)
	}

	write(t, s, "new", `{"version":3,"id":"new"}`)
	if err := s.Load("new", &got); err == nil || !strings.Contains(err.Error(), "version 3") {
		t.Errorf("newer record: %v", err)
	}
	s.Migrate = nil
	write(t, s, "older", `{"version":1,"id":"older"}`)
	if err := s.Load("older", &got); err == nil {
		t.Error("an older record loaded with no migration")
	}
	if b, _ := os.ReadFile(s.Path("older")); string(b) != `{"version":1,"id":"older"}` {
		t.Errorf("a refused record was changed: %s", b)
	}
	if err := s.Load("missing", &got); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing record: %v", err)
	}
}

// Walk reports every entry with its record or why there is none.
func TestWalk(t *testing.T) {
	s := newStore(t, 1)
	write(t, s, "good", `{"version":1,"id":"good","count":1}`)
	write(t, s, "other", `{"version":1,"id":"good"}`)
	write(t, s, "broken", `{`)
	if err := os.MkdirAll(filepath.Join(s.Dir, "empty"), 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(s.Dir, "file"), nil, 0o600)
	write(t, s, "BAD", `{"version":1,"id":"BAD"}`)
	got := map[string]string{}
	err := Walk(s, func(id string) bool { return id == strings.ToLower(id) }, func(id string, r *thing, err error) {
		switch {
		case err == nil:
			got[id] = fmt.Sprint(r.Count)
		case errors.Is(err, ErrNotRecordDir):
			got[id] = "not a record dir"
		case errors.Is(err, fs.ErrNotExist):
			got[id] = "no record"
		default:
			got[id] = "unusable"
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"good": "1", "other": "unusable", "broken": "unusable", "empty": "no record",
		"file": "not a record dir", "BAD": "not a record dir"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("walk: %v, want %v", got, want)
	}
}

func TestUnowned(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"b", "a", "kept"} {
		os.WriteFile(filepath.Join(dir, n), nil, 0o600)
	}
	if got := Unowned(dir, func(n string) bool { return n == "kept" }); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("unowned %v", got)
	}
	if got := Unowned(filepath.Join(dir, "missing"), func(string) bool { return false }); got != nil {
		t.Errorf("missing dir: %v", got)
	}
}

// A migrated record that cannot be written back (here its directory is
// read-only) is still loaded and handed to Walk's caller, with
// ErrNotWrittenBack for the log: a full disk during an upgrade must not
// make containers unrestorable. The old version stays on disk.
func TestMigratedRecordNotWrittenBack(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: a read-only bind mount")
	}
	s := newStore(t, 1)
	s.Migrate = func(_ int, b []byte) ([]byte, error) { return b, nil }
	write(t, s, "a", `{"id":"a","count":4}`)
	dir := filepath.Join(s.Dir, "a")
	if err := syscall.Mount(dir, dir, "", syscall.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	if err := syscall.Mount("", dir, "", syscall.MS_REMOUNT|syscall.MS_BIND|syscall.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	var got thing
	if err := s.Load("a", &got); !errors.Is(err, ErrNotWrittenBack) || got.Count != 4 {
		t.Errorf("load: %+v, %v", got, err)
	}
	var walked *thing
	Walk(s, func(string) bool { return true }, func(id string, r *thing, err error) {
		if !errors.Is(err, ErrNotWrittenBack) {
			t.Errorf("walk: %v", err)
		}
		walked = r
	})
	if walked == nil || walked.Count != 4 {
		t.Errorf("walk handed over %+v", walked)
	}
	if b, _ := os.ReadFile(s.Path("a")); string(b) != `{"id":"a","count":4}` {
		t.Errorf("record changed: %s", b)
	}
}
