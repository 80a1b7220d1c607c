package monitor

// The output pumps: pipe or pty to log, and to attach clients.

import (
	"bytes"
	"os"
	"sync"
	"syscall"
	"time"
)

// readBufSize is the pumps' read size, conmon's too.
const readBufSize = 16 * 1024

// pumpGroup is a set of outputs pumped together and stopped together:
// the container's, or one exec's (see execIn).
type pumpGroup struct {
	wg      sync.WaitGroup
	outputs []*os.File // read ends being pumped
}

// startPump copies one output of the container to its log stream and
// attach clients until EOF. capture keeps what it reads while the
// runtime runs (its error text).
//
// The pumps wait for output in the poller with no buffer of their own and
// read, in turn, into one shared buffer (m.readBuf, under m.readMu): a
// buffer per pump would cost each monitor 16 KiB more, and one on a pump's
// stack more still (the stack grows to 32 KiB by copies, each left
// resident, and the buffer is zeroed).
func (m *supervisor) startPump(r *os.File, stream *LogStream, id byte, capture bool) {
	m.pumpIn(&m.pumps, r, stream, id, capture)
}

// pumpIn copies one output to stream (and, with id, to attach clients)
// until EOF, as one of g.
func (m *supervisor) pumpIn(g *pumpGroup, r *os.File, stream *LogStream, id byte, capture bool) {
	g.outputs = append(g.outputs, r)
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		defer r.Close()
		rc, err := r.SyscallConn()
		if err != nil {
			m.diag.Print("output: ", err.Error())
			return
		}
		for {
			var n int
			var rerr error
			err := rc.Read(func(fd uintptr) bool {
				m.readMu.Lock()
				if m.readBuf == nil {
					m.readBuf = make([]byte, readBufSize)
				}
				for {
					n, rerr = syscall.Read(int(fd), m.readBuf)
					if rerr != syscall.EINTR {
						break
					}
				}
				if rerr == syscall.EAGAIN {
					m.readMu.Unlock()
					return false // wait in the poller
				}
				return true // m.readMu stays held until the output is handled
			})
			if err != nil {
				// stopPumps' deadline (m.readMu is not held).
				break
			}
			if rerr == nil && n > 0 {
				m.handleOutput(m.readBuf[:n], stream, id, capture)
			}
			m.readMu.Unlock()
			if rerr != nil || n == 0 {
				// EOF; EIO from a pty whose last slave closed.
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

// handleOutput logs p and sends it to attach clients; none of them keeps
// p, which is the shared read buffer.
func (m *supervisor) handleOutput(p []byte, stream *LogStream, id byte, capture bool) {
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

func (m *supervisor) keep(p []byte) {
	m.captureMu.Lock()
	defer m.captureMu.Unlock()
	if room := captureMax - len(m.capture); room > 0 {
		m.capture = append(m.capture, p[:min(len(p), room)]...)
	}
}

// stopPumps waits up to wait for every output of the container to reach
// EOF, then cuts the rest short.
func (m *supervisor) stopPumps(wait time.Duration) {
	m.stopGroup(&m.pumps, wait, "the container")
}

// stopGroup waits up to wait for every output of g to reach EOF, then
// cuts the rest short.
func (m *supervisor) stopGroup(g *pumpGroup, wait time.Duration, whose string) {
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	if waitOrTimeout(done, wait) {
		return
	}
	m.diag.Print("output still open ", wait.String(), " after ", whose, " exited; closing it")
	for _, f := range g.outputs {
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
