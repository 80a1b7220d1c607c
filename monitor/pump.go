package monitor

// The output pumps: pipe or pty to log, and to attach clients.

import (
	"bytes"
	"os"
	"time"
)

// startPump copies one output to its log stream and attach clients until
// EOF. capture keeps what it reads while the runtime runs (its error text).
func (m *monitor) startPump(r *os.File, stream *LogStream, id byte, capture bool) {
	m.outputs = append(m.outputs, r)
	m.pumps.Add(1)
	go func() {
		defer m.pumps.Done()
		defer r.Close()
		buf := make([]byte, 16*1024)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				p := buf[:n]
				if capture && m.creating.Load() {
					m.keep(p)
				}
				if stream != nil {
					if _, err := stream.Write(p); err != nil {
						m.diag.Printf("log: %v", err)
					}
				} else {
					m.diag.Printf("runtime: %s", bytes.TrimSpace(p))
				}
				if a := m.attach.Load(); a != nil && id != 0 {
					a.broadcast(id, p)
				}
			}
			if err != nil {
				// EOF; EIO from a pty whose last slave closed; or
				// stopPumps' deadline.
				break
			}
		}
		if stream != nil {
			if err := stream.Flush(); err != nil {
				m.diag.Printf("log: %v", err)
			}
		}
	}()
}

func (m *monitor) keep(p []byte) {
	m.captureMu.Lock()
	defer m.captureMu.Unlock()
	if room := captureMax - len(m.capture); room > 0 {
		m.capture = append(m.capture, p[:min(len(p), room)]...)
	}
}

// stopPumps waits up to wait for every output to reach EOF, then cuts the
// rest short.
func (m *monitor) stopPumps(wait time.Duration) {
	done := make(chan struct{})
	go func() { m.pumps.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(wait):
	}
	m.diag.Printf("output still open %v after the container exited; closing it", wait)
	for _, f := range m.outputs {
		_ = f.SetReadDeadline(time.Unix(1, 0))
	}
	<-done
}
