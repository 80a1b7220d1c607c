package monitor

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// CRI log stream names and tags (k8s.io/cri-api's LogStreamType and
// LogTag, spelled out here so the monitor binary does not link the CRI
// protobufs).
const (
	StreamStdout = "stdout"
	StreamStderr = "stderr"
	tagPartial   = 'P'
	tagFull      = 'F'
)

// LogWriter writes a container's output to a CRI log file, the format
// kubelet reads: "<timestamp> <stream> <P|F> <text>\n". Every record goes
// to the file in one write(2), so a reader never sees half a record.
//
// No library does this without pulling in the CRI protobufs (containerd's
// and CRI-O's writers live inside their daemons), and the monitor must stay
// small, hence this short writer.
type LogWriter struct {
	mu     sync.Mutex
	dir    string
	path   string
	f      *os.File // nil when path is empty: output is discarded
	max    int
	now    func() time.Time
	failed error // the first write error, reported once
	closed bool
}

// OpenLogWriter opens (creating, appending) the CRI log at path, which
// must be beneath dir (the pod's log directory; "" means path's own
// directory): see openLogFile. An empty path gives a writer that
// discards. maxLine <= 0 means DefaultMaxLineSize.
func OpenLogWriter(dir, path string, maxLine int) (*LogWriter, error) {
	if maxLine <= 0 {
		maxLine = DefaultMaxLineSize
	}
	if dir == "" {
		dir = filepath.Dir(path)
	}
	w := &LogWriter{dir: dir, path: path, max: maxLine, now: time.Now}
	if path == "" {
		return w, nil
	}
	f, err := openLogFile(dir, path)
	if err != nil {
		return nil, err
	}
	w.f = f
	return w, nil
}

// Reopen opens the log path anew and switches to it. kubelet rotates by
// renaming the file and then asking for a reopen: records written before
// Reopen returns are in the renamed file, later ones in the new file, and
// partial lines waiting in streams are not in either yet, so none is lost.
func (w *LogWriter) Reopen() error {
	if w.path == "" {
		return nil
	}
	f, err := openLogFile(w.dir, w.path)
	if err != nil {
		return err
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		f.Close()
		return nil
	}
	old := w.f
	w.f = f
	w.failed = nil
	w.mu.Unlock()
	if old != nil {
		return old.Close()
	}
	return nil
}

// Close closes the file. Streams should be flushed first.
func (w *LogWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// write writes formatted records. A write error (disk full) is returned
// once, then records are dropped until a Reopen: the container must never
// block on a log it cannot write.
func (w *LogWriter) write(b []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil || w.failed != nil {
		return nil
	}
	if _, err := w.f.Write(b); err != nil {
		w.failed = err
		return wrap(err, "write container log")
	}
	return nil
}

// Stream returns a writer for one output stream (StreamStdout or
// StreamStderr). A stream assembles lines: each full line becomes an "F"
// record; a line longer than the maximum is cut into "P" records with the
// last piece "F"; text with no newline yet waits until the newline, the
// maximum, or Flush. A Stream is not safe for concurrent use (one reader
// goroutine feeds it); different streams of one writer are.
func (w *LogWriter) Stream(name string) *LogStream {
	return &LogStream{w: w, name: name}
}

// LogStream is one stream of a LogWriter.
type LogStream struct {
	w       *LogWriter
	name    string
	partial []byte // text after the last newline
	out     []byte // records being formatted
	err     error  // the first write error of this Write or Flush
	pre     []byte // the records' "<timestamp> <stream> " prefix
	// left is how many more bytes of records the stream writes, when
	// limited.
	left    int64
	limited bool
}

// Limit makes the stream write at most n bytes to the file, counted as
// written (records, with their timestamps and tags), not as output: a
// command printing only newlines costs about 41 bytes of records per
// byte of output. The record that reaches the limit is cut short (a "P"
// record); later output is consumed and dropped.
func (s *LogStream) Limit(n int64) {
	s.left, s.limited = n, true
}

// Write logs p. It always consumes all of p.
func (s *LogStream) Write(p []byte) (int, error) {
	n := len(p)
	if s.limited && s.left <= 0 {
		return n, nil
	}
	max := s.w.max
	prefix := s.prefix()
	s.out, s.err = s.out[:0], nil
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.partial = append(s.partial, p...)
			// Keep up to max bytes: exactly max may still end with a
			// newline and be one full record.
			cut := 0
			for len(s.partial)-cut > max {
				s.record(prefix, tagPartial, s.partial[cut:cut+max])
				cut += max
			}
			s.partial = append(s.partial[:0], s.partial[cut:]...)
			break
		}
		line := p[:i]
		p = p[i+1:]
		if len(s.partial) > 0 {
			s.partial = append(s.partial, line...)
			line = s.partial
		}
		for len(line) > max {
			s.record(prefix, tagPartial, line[:max])
			line = line[max:]
		}
		s.record(prefix, tagFull, line)
		s.partial = s.partial[:0]
	}
	s.writeOut()
	s.shrink()
	return n, s.err
}

// Flush logs text still waiting for its newline as a "P" record (the
// stream ended in the middle of a line: the record says so).
func (s *LogStream) Flush() error {
	if len(s.partial) == 0 {
		return nil
	}
	s.out, s.err = s.out[:0], nil
	s.record(s.prefix(), tagPartial, s.partial)
	s.partial = s.partial[:0]
	s.writeOut()
	s.shrink()
	return s.err
}

// prefix is "<timestamp> <stream> " for records made now: all records of
// one read share the time they were read. Its buffer is reused, so
// logging allocates nothing: a monitor whose heap never grows never runs
// the garbage collector, whose first cycle costs about 180 KiB for good
// (mark workers, work buffers).
func (s *LogStream) prefix() []byte {
	b := appendTimestamp(s.pre[:0], s.w.now())
	b = append(b, ' ')
	b = append(b, s.name...)
	s.pre = append(b, ' ')
	return s.pre
}

// logBatch is how many bytes of records a stream formats before it
// writes them: short lines make several times their size in records (a
// 16 KiB read of 10-byte lines, 75 KiB), and a buffer for all of a read's
// records would be reallocated again and again, which wakes the GC.
const logBatch = 16 * 1024

// record formats one record into s.out, writing s.out first when a batch
// is full (records are never split across writes).
func (s *LogStream) record(prefix []byte, tag byte, text []byte) {
	if s.limited {
		size := int64(len(prefix) + 2 + len(text) + 1)
		if size > s.left {
			// Cut this record to what is left (if its text can have a
			// byte at all) and write nothing after it.
			room := s.left - int64(len(prefix)+3)
			s.left = 0
			if room <= 0 {
				return
			}
			text, tag = text[:room], tagPartial
			size = int64(len(prefix) + 2 + len(text) + 1)
		}
		s.left -= size
	}
	if s.out == nil {
		// Room for a batch and one more record of the longest text, at
		// once: grown by append, the buffer would leave its smaller
		// copies behind as garbage until a GC cycle, which may never run.
		s.out = make([]byte, 0, logBatch+s.w.max+64)
	}
	if len(s.out) > 0 && len(s.out)+len(prefix)+len(text)+3 > logBatch {
		s.writeOut()
	}
	s.out = append(s.out, prefix...)
	s.out = append(s.out, tag, ' ')
	s.out = append(s.out, text...)
	s.out = append(s.out, '\n')
}

// writeOut writes the formatted records and keeps the first error.
func (s *LogStream) writeOut() {
	if len(s.out) == 0 {
		return
	}
	if err := s.w.write(s.out); err != nil && s.err == nil {
		s.err = err
	}
	s.out = s.out[:0]
}

// shrink drops buffers a burst grew, so an idle container's monitor stays
// small.
func (s *LogStream) shrink() {
	const keep = 64 * 1024
	if cap(s.out) > keep {
		s.out = nil
	}
	if cap(s.partial) > 2*s.w.max && len(s.partial) <= s.w.max {
		s.partial = append([]byte(nil), s.partial...)
	}
}
