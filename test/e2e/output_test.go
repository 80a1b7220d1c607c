package e2e

import (
	"bytes"
	"strings"
	"sync"
)

// lockedBuffer is a child process's output, read by the test while the
// process still writes it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lineSignal closes seen once the output written to it contains want.
type lineSignal struct {
	mu   sync.Mutex
	buf  strings.Builder
	want string
	seen chan struct{}
	done bool
}

func (s *lineSignal) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.done {
		s.buf.Write(p)
		if strings.Contains(s.buf.String(), s.want) {
			s.done = true
			close(s.seen)
		}
	}
	return len(p), nil
}
