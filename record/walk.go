package record

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// ErrNotRecordDir is Walk's error for an entry of the store's directory
// that is not a directory named by a valid id.
var ErrNotRecordDir = errors.New("not a record directory")

// Identified is a record that names its own id, which Walk checks against
// its directory's name.
type Identified interface {
	RecordID() string
}

// Walk is the restore loop at start: it loads the record of every entry
// of the store's directory, in name order, into a new T and calls fn with
// the entry's name and either the record or why there is none:
// ErrNotRecordDir, an error satisfying errors.Is(err, fs.ErrNotExist) (a
// directory without a record: a crash before the first one), or a record
// that cannot be used (unreadable, of a newer version, naming another
// id). A record comes with ErrNotWrittenBack if it was migrated but not
// saved back: it is usable, the error is for the log. What to do with
// each case is the caller's: only it knows what a record guards.
func Walk[T any, P interface {
	*T
	Identified
}](s *Store, valid func(id string) bool, fn func(id string, rec P, err error)) error {
	entries, err := os.ReadDir(s.Dir)
	if err != nil {
		return fmt.Errorf("read %s: %w", s.Dir, err)
	}
	for _, e := range entries {
		id := e.Name()
		if !e.IsDir() || !valid(id) {
			fn(id, nil, fmt.Errorf("%s: %w", filepath.Join(s.Dir, id), ErrNotRecordDir))
			continue
		}
		rec := P(new(T))
		err := s.Load(id, rec)
		if err != nil && !errors.Is(err, ErrNotWrittenBack) {
			fn(id, nil, err)
			continue
		}
		if rec.RecordID() != id {
			fn(id, nil, fmt.Errorf("%s: its record names id %q", s.Path(id), rec.RecordID()))
			continue
		}
		fn(id, rec, err)
	}
	return nil
}

// Unowned lists the entries of dir that owned does not claim, in name
// order: the leftovers of a crash between a teardown's steps, for the
// caller to sweep. A missing dir has none.
func Unowned(dir string, owned func(name string) bool) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if n := e.Name(); !owned(n) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}
