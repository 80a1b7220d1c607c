package supervisor

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
						m.diag.Print("log: ", err.Error())
					}
				} else {
					m.diag.Print("runtime: ", string(bytes.TrimSpace(p)))
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
				m.diag.Print("log: ", err.Error())
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
	if waitOrTimeout(done, wait) {
		return
	}
	m.diag.Print("output still open ", wait.String(), " after the container exited; closing it")
	for _, f := range m.outputs {
		_ = f.SetReadDeadline(time.Unix(1, 0))
	}
	<-done
}

// waitOrTimeout waits until done is closed (true) or d passed (false).
// It is a select on time.After without the timer channel, whose
// chan time.Time would make the linker keep time's formatting and zone
// loading for the monitor.
func waitOrTimeout(done <-chan struct{}, d time.Duration) bool {
	expired := make(chan struct{})
	t := time.AfterFunc(d, func() { close(expired) })
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-expired:
		return false
	}
}
