// Package record keeps berthd's records on disk: one JSON file per
// container or pod, in a directory named by its id, each with the
// version of its format. It is the one place that encodes, saves, loads,
// migrates and lists them, for both oci and sandbox, so both kinds follow
// one rule for durability and one for versions. It imports only
// atomicfile and the standard library.
package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/berth-cri/berth/atomicfile"
)

// Sync says whether a save must survive a machine crash.
type Sync bool

const (
	// Durable: fsynced before Save returns (atomicfile.WriteFile). For a
	// record that guards something a reboot leaves on disk, and for the
	// record an RPC answers with.
	Durable Sync = true
	// Progress: replaced atomically but not fsynced
	// (atomicfile.WriteFileNoSync). For a step a reboot makes moot: what
	// it records lives in memory and is gone after a reboot too.
	Progress Sync = false
)

// Store is one kind of record: <Dir>/<id>/<File>, written at Version.
type Store struct {
	Dir  string
	File string
	// Noun names the kind in errors ("container", "pod").
	Noun string
	// Version is the format this berthd writes; records of an older one
	// go through Migrate when loaded, newer ones are refused.
	Version int
	// Migrate turns a record of version from (below Version) into one of
	// Version, both as JSON without the version key. Nil if no older
	// version is readable.
	Migrate func(from int, b []byte) ([]byte, error)
}

// versionKey is the record's own key beside its fields. A record type
// must not have a field of that name.
const versionKey = "version"

// Path is the record file of id.
func (s *Store) Path(id string) string {
	return filepath.Join(s.Dir, id, s.File)
}

// Save replaces id's record with v, encoded with encoding/json, and the
// store's version as its first key. Its directory must exist.
func (s *Store) Save(id string, v any, sync Sync) error {
	b, err := s.encode(v)
	if err != nil {
		return fmt.Errorf("encode %s %s: %w", s.Noun, id, err)
	}
	write := atomicfile.WriteFileNoSync
	if sync == Durable {
		write = atomicfile.WriteFile
	}
	if err := write(s.Path(id), b, 0o600); err != nil {
		return fmt.Errorf("save %s %s: %w", s.Noun, id, err)
	}
	return nil
}

// encode is v's JSON, indented, with the version spliced in as the first
// key: the version stays beside the fields (today's pod records have it
// there) without every record type declaring it.
func (s *Store) encode(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	if len(b) < 2 || b[0] != '{' {
		return nil, fmt.Errorf("a record must encode as a JSON object, not %.20q", b)
	}
	key := "\n  \"" + versionKey + "\": "
	if bytes.Contains(b, []byte(key)) { // a top-level key: indented once
		return nil, fmt.Errorf("a record must not have its own %q key", versionKey)
	}
	head := "{" + key + strconv.Itoa(s.Version)
	if bytes.Equal(b, []byte("{}")) {
		return []byte(head + "\n}"), nil
	}
	return append([]byte(head+","), b[1:]...), nil
}

// Load reads id's record into v. A record of an older version is migrated
// and saved back (durably) at the current one, so it is migrated once; if
// that save fails the error is ErrNotWrittenBack and v is usable.
// A missing record is an error satisfying errors.Is(err, fs.ErrNotExist).
func (s *Store) Load(id string, v any) error {
	path := s.Path(id)
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	ver, b, err := splitVersion(b)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if ver > s.Version || ver < 0 || (ver < s.Version && s.Migrate == nil) {
		return fmt.Errorf("%s: record version %d, this berthd reads up to %d", path, ver, s.Version)
	}
	if ver < s.Version {
		if b, err = s.Migrate(ver, b); err != nil {
			return fmt.Errorf("%s: migrate from version %d: %w", path, ver, err)
		}
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	if ver < s.Version {
		// Written back so the record is migrated once and a later
		// berthd's migrations start from this version. A failure (a full
		// disk) leaves the old version on disk, still readable, and v
		// usable: the record's next save writes the current version.
		if err := s.Save(id, v, Durable); err != nil {
			return fmt.Errorf("%w: %s, migrated from version %d: %w", ErrNotWrittenBack, path, ver, err)
		}
	}
	return nil
}

// ErrNotWrittenBack is Load's error when a record was migrated into v but
// could not be saved at the current version: v is usable.
var ErrNotWrittenBack = errors.New("migrated record not written back")

// splitVersion returns the record's version (0 if it has none: records
// from before versions) and its JSON without the version key.
func splitVersion(b []byte) (int, []byte, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return 0, nil, err
	}
	raw, ok := fields[versionKey]
	if !ok {
		return 0, b, nil
	}
	var ver int
	if err := json.Unmarshal(raw, &ver); err != nil {
		return 0, nil, fmt.Errorf("version: %w", err)
	}
	delete(fields, versionKey)
	out, err := json.Marshal(fields)
	return ver, out, err
}
