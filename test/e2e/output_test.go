package e2e

import (
	"strings"
	"sync"
)

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
