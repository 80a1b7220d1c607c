package monitorclient

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/berth-cri/berth/monitor"
)

// Session is the caller's end of an exec session started by StartAttached.
type Session struct {
	c *net.UnixConn
}

// StartAttached starts an exec session (cfg.ExecProcess must be set) whose
// stdio is streamed to the returned Session from the command's first
// byte. The command is killed when the Session is closed before it exits,
// or when the caller dies. cfg.AttachSocket is ignored: the session has
// one client only.
func StartAttached(ctx context.Context, monitorBinary string, cfg Config) (*Started, *Session, error) {
	if cfg.ExecProcess == "" {
		return nil, nil, fmt.Errorf("monitor config: StartAttached needs an exec session")
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("exec session socket pair: %w", err)
	}
	mine := os.NewFile(uintptr(fds[0]), "exec-attach")
	theirs := os.NewFile(uintptr(fds[1]), "exec-attach-monitor")
	defer theirs.Close()
	fc, err := net.FileConn(mine)
	mine.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("exec session socket: %w", err)
	}
	cfg.AttachSocket = ""
	cfg.AttachFD = monitor.AttachFD
	if err := cfg.Validate(); err != nil {
		fc.Close()
		return nil, nil, err
	}
	sp, err := spawn(monitorBinary, cfg.ID, cfg.MonitorLogPath, theirs)
	var st *Started
	if err == nil {
		st, err = sp.Start(ctx, cfg)
	}
	if err != nil {
		fc.Close()
		return nil, nil, err
	}
	return st, &Session{c: fc.(*net.UnixConn)}, nil
}

// Stream copies stdin (nil for none) to the command and its output to
// stdout and stderr (a tty's output is all stdout), and applies each size
// from resize (tty sessions only), like Attach. It returns nil once the
// command exited and its output was delivered, or ctx's error; either way
// the caller then closes the Session.
func (s *Session) Stream(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, resize <-chan Size) error {
	return attachOn(ctx, s.c, stdin, stdout, stderr, resize)
}

// Close hangs up; a command still running is killed by its monitor.
func (s *Session) Close() error { return s.c.Close() }
