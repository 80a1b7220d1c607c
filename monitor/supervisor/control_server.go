package supervisor

import (
	"os"
	"strconv"
	"time"
)

// controlServer serves the control socket: one request per connection,
// answered when done.
type controlServer struct {
	l    *listener
	path string
	logw *LogWriter
	diag *Diag
}

func newControlServer(path string, logw *LogWriter, diag *Diag) (*controlServer, error) {
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
	buf := make([]byte, 256)
	n, err := c.Read(buf)
	if err != nil {
		return
	}
	var reply string
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
