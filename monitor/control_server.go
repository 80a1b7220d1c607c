package monitor

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// controlServer serves the control socket: one request per connection,
// answered when done.
type controlServer struct {
	l    *listener
	path string
	logw *LogWriter
	diag *Diag
	// exec runs an exec request (see exec_in.go) on its connection.
	exec func(c *os.File, req []byte) string
	// signal sends a signal to the container's init; false once it was
	// reaped.
	signal func(sig syscall.Signal) bool
}

func newControlServer(path string, logw *LogWriter, diag *Diag, exec func(*os.File, []byte) string, signal func(syscall.Signal) bool) (*controlServer, error) {
	l, err := listenPacket(path)
	if err != nil {
		return nil, err
	}
	s := &controlServer{l: l, path: path, logw: logw, diag: diag, exec: exec, signal: signal}
	go s.serve()
	return s, nil
}

func (s *controlServer) serve() {
	for {
		c, err := s.l.accept()
		if err != nil {
			return
		}
		go s.handle(c)
	}
}

func (s *controlServer) handle(c *os.File) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	// A seqpacket read takes one whole request (cut at the buffer's
	// size); only an exec's is longer than a word.
	buf := make([]byte, CtlExecMaxRequest)
	n, err := c.Read(buf)
	if err != nil {
		return
	}
	if body, ok := strings.CutPrefix(string(buf[:n]), CtlExec+"\n"); ok && s.exec != nil {
		// An exec lasts as long as its command (berthd bounds it).
		_ = c.SetDeadline(time.Time{})
		reply := s.exec(c, []byte(body))
		_ = c.SetWriteDeadline(time.Now().Add(30 * time.Second))
		_, _ = c.Write([]byte(reply))
		// An exec's garbage (pipes, buffers, the runtime's argv and
		// environment, four goroutines) is tens of KiB; probes every
		// few seconds would grow the heap to the GC's 4 MiB floor
		// (times GOGC) before a collection, and its pages would stay
		// resident, in every container's monitor. Give them back now,
		// after the reply: the caller does not wait for it.
		debug.FreeOSMemory()
		return
	}
	var reply string
	if arg, ok := strings.CutPrefix(string(buf[:n]), CtlSignal+" "); ok && s.signal != nil {
		sig, err := strconv.Atoi(arg)
		switch {
		case err != nil || sig <= 0 || sig > 64:
			reply = "error: bad signal " + strconv.Quote(arg)
		case s.signal(syscall.Signal(sig)):
			reply = "ok"
		default:
			reply = "error: " + CtlExited
		}
		_, _ = c.Write([]byte(reply))
		return
	}
	switch req := string(buf[:n]); req {
	case CtlReopenLog:
		if err := s.logw.Reopen(); err != nil {
			s.diag.Print("reopen log: ", err.Error())
			reply = "error: " + err.Error()
		} else {
			reply = "ok"
		}
	case CtlPing:
		reply = "ok " + strconv.Itoa(os.Getpid())
	default:
		reply = "error: unknown request " + strconv.Quote(req)
	}
	_, _ = c.Write([]byte(reply))
}

func (s *controlServer) close() {
	s.l.close()
	_ = os.Remove(s.path)
}
