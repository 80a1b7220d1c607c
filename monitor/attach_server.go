package monitor

import (
	"encoding/binary"
	"os"
	"sync"
	"time"
)

// attachServer serves the attach socket: it sends the container's output to
// every attached client and feeds their input and resizes to the
// container.
type attachServer struct {
	l    *listener // nil when the server only has a bound client
	path string
	diag *Diag

	// ready is closed once stdin and tty are known; clients' packets wait
	// for it (an exec session's pty arrives after its client connected).
	ready chan struct{}

	stdin     *os.File // pipe write end or pty master; nil without Stdin
	tty       *os.File // pty master; nil without Terminal
	stdinOnce bool
	stdinMu   sync.Mutex // one client's write at a time
	closeOnce sync.Once

	mu      sync.Mutex
	clients map[*attachConn]struct{}
	closed  bool
	writers sync.WaitGroup
}

// attachConn is one client. out is bounded: a client too slow to take the
// output is dropped rather than allowed to stall the container's logging.
type attachConn struct {
	c   *os.File // a connected seqpacket socket
	out chan []byte
	// bound marks an exec session's own client (see Config.AttachFD): it
	// gets every byte, waited for rather than dropped, and its hangup
	// calls onHangup.
	bound    bool
	gone     chan struct{} // closed when the connection failed
	goneOnce sync.Once
	buf      []byte // read's buffer
}

func (ac *attachConn) hangup() { ac.goneOnce.Do(func() { close(ac.gone) }) }

const attachQueue = 256 // packets queued per client

func newAttachServer(path string, stdin, tty *os.File, stdinOnce bool, diag *Diag) (*attachServer, error) {
	a := newBoundAttachServer(nil, nil, diag)
	a.setIO(stdin, tty, stdinOnce)
	if err := a.listen(path); err != nil {
		return nil, err
	}
	return a, nil
}

// newBoundAttachServer serves one client whose connection already exists
// (an exec session streamed to berthd), with no socket. Its packets wait
// for setIO; onHangup runs when that client goes away.
func newBoundAttachServer(c *os.File, onHangup func(), diag *Diag) *attachServer {
	a := &attachServer{diag: diag, ready: make(chan struct{}), clients: map[*attachConn]struct{}{}}
	if c != nil {
		ac := &attachConn{c: c, out: make(chan []byte, attachQueue), bound: true, gone: make(chan struct{})}
		a.clients[ac] = struct{}{}
		a.writers.Add(1)
		go a.write(ac)
		go func() {
			a.read(ac)
			if onHangup != nil {
				onHangup()
			}
		}()
	}
	return a
}

// setIO names the container's stdin and tty and lets clients' packets
// through.
func (a *attachServer) setIO(stdin, tty *os.File, stdinOnce bool) {
	a.stdin, a.tty, a.stdinOnce = stdin, tty, stdinOnce
	close(a.ready)
}

// listen starts accepting clients on a socket at path.
func (a *attachServer) listen(path string) error {
	l, err := listenPacket(path)
	if err != nil {
		return err
	}
	a.l, a.path = l, path
	go a.serve()
	return nil
}

func (a *attachServer) serve() {
	for {
		c, err := a.l.accept()
		if err != nil {
			return
		}
		ac := &attachConn{c: c, out: make(chan []byte, attachQueue), gone: make(chan struct{})}
		a.mu.Lock()
		if a.closed {
			a.mu.Unlock()
			c.Close()
			return
		}
		a.clients[ac] = struct{}{}
		a.writers.Add(1)
		a.mu.Unlock()
		go a.write(ac)
		go a.read(ac)
	}
}

// write sends queued output; when the queue is closed it has sent it all
// and hangs up, which the client reads as the end of the output.
func (a *attachServer) write(ac *attachConn) {
	defer a.writers.Done()
	defer ac.c.Close()
	for p := range ac.out {
		if _, err := ac.c.Write(p); err != nil {
			ac.hangup() // first: a broadcast may be waiting on this client
			a.drop(ac)
			for range ac.out {
			}
			return
		}
	}
}

// read applies what the client sends.
func (a *attachServer) read(ac *attachConn) {
	// On the heap, in ac: a 32 KiB buffer that does not escape would go on
	// this goroutine's stack, which would grow to 64 KiB by copies (each
	// left resident) and zero it; fresh heap pages are touched only as
	// input arrives.
	ac.buf = make([]byte, 1+MaxPacket)
	buf := ac.buf
	for first := true; ; first = false {
		n, err := ac.c.Read(buf)
		if err != nil || n == 0 {
			break
		}
		if first {
			<-a.ready
		}
		switch buf[0] {
		case AttachStdin:
			if a.stdin != nil && n > 1 {
				a.stdinMu.Lock()
				_, err := a.stdin.Write(buf[1:n])
				a.stdinMu.Unlock()
				if err != nil {
					a.diag.Print("attach: write stdin: ", err.Error())
				}
			}
		case AttachStdinClose:
			a.stdinDone()
		case AttachResize:
			if a.tty != nil && n >= 5 {
				sz := Size{Width: binary.BigEndian.Uint16(buf[1:]), Height: binary.BigEndian.Uint16(buf[3:])}
				if err := setWinsize(a.tty, sz); err != nil {
					a.diag.Print("attach: resize: ", err.Error())
				}
			}
		}
	}
	// A StdinOnce container's input ends with its first session, however
	// that session ends.
	a.stdinDone()
	ac.hangup()
	a.drop(ac)
}

// stdinDone ends the container's input when it is StdinOnce: the pipe is
// closed; a tty gets end-of-file (^D), since closing the pty master would
// also end its output.
func (a *attachServer) stdinDone() {
	if !a.stdinOnce || a.stdin == nil {
		return
	}
	a.closeOnce.Do(func() {
		if a.tty != nil {
			a.stdinMu.Lock()
			_, _ = a.stdin.Write([]byte{4})
			a.stdinMu.Unlock()
			return
		}
		_ = a.stdin.Close()
	})
}

// drop forgets a client and ends its writer.
func (a *attachServer) drop(ac *attachConn) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.clients[ac]; ok {
		delete(a.clients, ac)
		close(ac.out)
	}
}

// broadcast queues output for every client.
func (a *attachServer) broadcast(stream byte, p []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.clients) == 0 {
		return
	}
	for len(p) > 0 {
		n := min(len(p), MaxPacket)
		pkt := make([]byte, 1+n)
		pkt[0] = stream
		copy(pkt[1:], p[:n])
		p = p[n:]
		for ac := range a.clients {
			if ac.bound {
				// An exec session's client gets all of its output: the
				// command waits for it, as it would for a slow pipe.
				select {
				case ac.out <- pkt:
				case <-ac.gone:
				}
				continue
			}
			select {
			case ac.out <- pkt:
			default:
				a.diag.Print("attach: client too slow, dropped")
				delete(a.clients, ac)
				close(ac.out)
				ac.c.Close()
			}
		}
	}
}

// close stops accepting, lets clients receive what is queued (for at most
// wait), hangs up on them and removes the socket.
func (a *attachServer) close(wait time.Duration) {
	a.mu.Lock()
	a.closed = true
	if a.l != nil {
		a.l.close()
	}
	for ac := range a.clients {
		delete(a.clients, ac)
		close(ac.out)
	}
	a.mu.Unlock()
	done := make(chan struct{})
	go func() { a.writers.Wait(); close(done) }()
	waitOrTimeout(done, wait)
	if a.path != "" {
		_ = os.Remove(a.path)
	}
}
