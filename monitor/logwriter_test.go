package monitor

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var fixedNow = time.Date(2016, 10, 6, 0, 17, 9, 669794202, time.FixedZone("CEST", 2*3600))

func newTestLog(t *testing.T, max int) (*LogWriter, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ctr.log")
	w, err := OpenLogWriter("", path, max)
	if err != nil {
		t.Fatal(err)
	}
	w.now = func() time.Time { return fixedNow }
	t.Cleanup(func() { w.Close() })
	return w, path
}

func readLog(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLogRecordShape(t *testing.T) {
	w, path := newTestLog(t, 0)
	if _, err := w.Stream(StreamStdout).Write([]byte("text\n")); err != nil {
		t.Fatal(err)
	}
	// UTC, nine fraction digits always, like kubelet's own example.
	want := "2016-10-05T22:17:09.669794202Z stdout F text\n"
	if got := readLog(t, path); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}

	w.now = func() time.Time { return time.Date(2020, 1, 2, 3, 4, 5, 100, time.UTC) }
	w.Stream(StreamStderr).Write([]byte("x\n"))
	if got := readLog(t, path); !strings.HasSuffix(got, "2020-01-02T03:04:05.000000100Z stderr F x\n") {
		t.Fatalf("trailing zeros trimmed or wrong stream: %q", got)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o640 {
		t.Fatalf("log mode %v, want 0640", fi.Mode().Perm())
	}
}

// records returns "stream tag text" for each record, checking the shape.
func records(t *testing.T, log string) []string {
	t.Helper()
	re := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) ([PF]) (.*)$`)
	var out []string
	for _, l := range strings.Split(strings.TrimSuffix(log, "\n"), "\n") {
		if l == "" && log == "" {
			break
		}
		m := re.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("malformed record %q", l)
		}
		out = append(out, m[1]+" "+m[2]+" "+m[3])
	}
	return out
}

func TestLogStreamLines(t *testing.T) {
	for _, tc := range []struct {
		name   string
		max    int
		writes []string
		flush  bool
		want   []string
	}{
		{"full lines", 0, []string{"a\nb\n"}, false, []string{"stdout F a", "stdout F b"}},
		{"empty line", 0, []string{"\n"}, false, []string{"stdout F "}},
		{"line across writes", 0, []string{"he", "ll", "o\nwor", "ld\n"}, false, []string{"stdout F hello", "stdout F world"}},
		{"partial waits for newline", 0, []string{"abc"}, false, nil},
		{"partial flushed at end", 0, []string{"abc\nde"}, true, []string{"stdout F abc", "stdout P de"}},
		{"long line split", 4, []string{"0123456789\n"}, false, []string{"stdout P 0123", "stdout P 4567", "stdout F 89"}},
		{"exactly max is full", 4, []string{"0123\n"}, false, []string{"stdout F 0123"}},
		{"exactly max across writes", 4, []string{"01", "23", "\n"}, false, []string{"stdout F 0123"}},
		{"long partial emitted at max", 4, []string{"0123456"}, false, []string{"stdout P 0123"}},
		{"long partial then newline", 4, []string{"0123456", "78\n"}, false, []string{"stdout P 0123", "stdout P 4567", "stdout F 8"}},
		{"many pieces", 3, []string{"a", "b", "c", "d", "e", "f", "g\n"}, false, []string{"stdout P abc", "stdout P def", "stdout F g"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, path := newTestLog(t, tc.max)
			s := w.Stream(StreamStdout)
			for _, p := range tc.writes {
				n, err := s.Write([]byte(p))
				if err != nil || n != len(p) {
					t.Fatalf("Write(%q) = %d, %v", p, n, err)
				}
			}
			if tc.flush {
				if err := s.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			got := records(t, readLog(t, path))
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestLogStreamsInterleave(t *testing.T) {
	w, path := newTestLog(t, 0)
	out, errs := w.Stream(StreamStdout), w.Stream(StreamStderr)
	out.Write([]byte("o1 "))
	errs.Write([]byte("e1\n"))
	out.Write([]byte("o2\n"))
	got := records(t, readLog(t, path))
	want := []string{"stderr F e1", "stdout F o1 o2"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q, want %q (a stream's partial line must not mix with another's)", got, want)
	}
}

func TestLogReopen(t *testing.T) {
	w, path := newTestLog(t, 0)
	s := w.Stream(StreamStdout)
	s.Write([]byte("one\ntw"))
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	s.Write([]byte("o\n")) // still the old file until the reopen
	if err := w.Reopen(); err != nil {
		t.Fatal(err)
	}
	s.Write([]byte("three\n"))
	if got := records(t, readLog(t, path+".1")); strings.Join(got, "|") != "stdout F one|stdout F two" {
		t.Fatalf("rotated file: %q", got)
	}
	if got := records(t, readLog(t, path)); strings.Join(got, "|") != "stdout F three" {
		t.Fatalf("new file: %q", got)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o640 {
		t.Fatalf("new log mode %v, want 0640", fi.Mode().Perm())
	}
}

func TestLogDiscard(t *testing.T) {
	w, err := OpenLogWriter("", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := w.Stream(StreamStdout).Write([]byte("x\n")); n != 2 || err != nil {
		t.Fatalf("discarding writer: %d, %v", n, err)
	}
	if err := w.Reopen(); err != nil {
		t.Fatal(err)
	}
}

func TestLogBigWrite(t *testing.T) {
	// One read of many lines makes a big batch of records; all must land.
	w, path := newTestLog(t, 0)
	var in strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&in, "line %d\n", i)
	}
	w.Stream(StreamStdout).Write([]byte(in.String()))
	got := records(t, readLog(t, path))
	if len(got) != 20000 || got[19999] != "stdout F line 19999" {
		t.Fatalf("%d records, last %q", len(got), got[len(got)-1])
	}
}

// A limited stream writes at most n bytes of records, timestamps and tags
// included, the last record cut short (an exec session's log must not
// fill the run root whatever the command prints).
func TestLogStreamLimit(t *testing.T) {
	w, path := newTestLog(t, 0)
	s := w.Stream(StreamStdout)
	// "<30-byte time> stdout F hello\n" is 46 bytes: two records, and 43
	// bytes for a third: its prefix (41) and 2 bytes of text.
	const limit = 46 + 46 + 43
	s.Limit(limit)
	for _, p := range []string{"hello\n", "world\n", "more\n", "and more"} {
		if n, err := s.Write([]byte(p)); n != len(p) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", p, n, err)
		}
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	log := readLog(t, path)
	got := strings.Join(records(t, log), "|")
	if want := "stdout F hello|stdout F world|stdout P mo"; got != want {
		t.Fatalf("records %q, want %q", got, want)
	}
	if len(log) != limit {
		t.Fatalf("wrote %d bytes, want %d", len(log), limit)
	}
}

// Output of newlines only, each a whole record, stays within the limit.
func TestLogStreamLimitCountsRecords(t *testing.T) {
	w, path := newTestLog(t, 0)
	s := w.Stream(StreamStderr)
	s.Limit(1000)
	nl := []byte(strings.Repeat("\n", 64*1024))
	for range 16 {
		s.Write(nl)
	}
	s.Flush()
	if n := len(readLog(t, path)); n > 1000 || n < 1000-41 {
		t.Fatalf("wrote %d bytes for a limit of 1000", n)
	}
}

// Logging allocates nothing once a stream's buffers have grown: the
// monitor of a container that only logs never needs a GC cycle.
func TestLogStreamWriteAllocatesNothing(t *testing.T) {
	w, _ := newTestLog(t, 0)
	s := w.Stream(StreamStdout)
	chunk := []byte("a full line\nand half of an")
	rest := []byte("other\n")
	s.Write(chunk)
	s.Write(rest)
	if n := testing.AllocsPerRun(100, func() {
		s.Write(chunk)
		s.Write(rest)
	}); n != 0 {
		t.Fatalf("%v allocations per write", n)
	}
}

// A read full of short lines makes several times its size in records;
// they are written in batches from one buffer that does not grow.
func TestLogStreamShortLinesReuseOneBuffer(t *testing.T) {
	w, path := newTestLog(t, 0)
	s := w.Stream(StreamStdout)
	read := []byte(strings.Repeat("line 1234\n", 1600)) // 16000 bytes, 1600 records
	s.Write(read)
	if n := testing.AllocsPerRun(20, func() { s.Write(read) }); n != 0 {
		t.Fatalf("%v allocations per read of short lines", n)
	}
	if cap(s.out) > logBatch+w.max+64 {
		t.Fatalf("record buffer grew to %d bytes", cap(s.out))
	}
	recs := records(t, readLog(t, path))
	if len(recs) != 22*1600 || recs[len(recs)-1] != "stdout F line 1234" {
		t.Fatalf("%d records, last %q", len(recs), recs[len(recs)-1])
	}
}
