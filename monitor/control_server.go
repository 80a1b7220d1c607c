package monitor

import (
	"log"
	"net"
	"os"
	"strconv"
	"time"
)

// controlServer serves the control socket: one request per connection,
// answered when done.
type controlServer struct {
	l    *net.UnixListener
	path string
	logw *LogWriter
	diag *log.Logger
}

func newControlServer(path string, logw *LogWriter, diag *log.Logger) (*controlServer, error) {
	l, err := listenPacket(path)
	if err != nil {
		return nil, err
	}
	s := &controlServer{l: l, path: path, logw: logw, diag: diag}
	go s.serve()
	return s, nil
}

func (s *controlServer) serve() {
	for {
		c, err := s.l.AcceptUnix()
		if err != nil {
			return
		}
		go s.handle(c)
	}
}

func (s *controlServer) handle(c *net.UnixConn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 256)
	n, err := c.Read(buf)
	if err != nil {
		return
	}
	var reply string
	switch req := string(buf[:n]); req {
	case ctlReopenLog:
		if err := s.logw.Reopen(); err != nil {
			s.diag.Printf("reopen log: %v", err)
			reply = "error: " + err.Error()
		} else {
			reply = "ok"
		}
	case ctlPing:
		reply = "ok " + strconv.Itoa(os.Getpid())
	default:
		reply = "error: unknown request " + strconv.Quote(req)
	}
	_, _ = c.Write([]byte(reply))
}

func (s *controlServer) close() {
	s.l.Close()
	_ = os.Remove(s.path)
}
