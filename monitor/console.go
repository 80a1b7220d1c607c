package monitor

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// consoleSocket receives the pty master that the runtime sends over
// --console-socket (the OCI runtime convention: one SCM_RIGHTS message on a
// stream socket).
type consoleSocket struct {
	path    string
	tempDir string
	l       *net.UnixListener
}

// newConsoleSocket listens beside the pid file, or in a private temp dir
// when that path is too long for the runtime (which connects by plain path).
func newConsoleSocket(cfg *Config) (*consoleSocket, error) {
	cs := &consoleSocket{path: filepath.Join(filepath.Dir(cfg.PidFile), "console-"+cfg.ID+".sock")}
	if len(cs.path) > maxSunPath {
		dir, err := os.MkdirTemp("", "berth-console-")
		if err != nil {
			return nil, fmt.Errorf("console socket dir: %w", err)
		}
		cs.tempDir = dir
		cs.path = filepath.Join(dir, "console.sock")
	}
	_ = os.Remove(cs.path)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: cs.path, Net: "unix"})
	if err != nil {
		cs.cleanup()
		return nil, fmt.Errorf("console socket: %w", err)
	}
	l.SetUnlinkOnClose(false)
	cs.l = l
	if err := os.Chmod(cs.path, 0o600); err != nil {
		cs.close()
		return nil, fmt.Errorf("console socket: %w", err)
	}
	return cs, nil
}

// receive accepts the runtime's connection and returns the pty master,
// non-blocking so reads go through the runtime poller.
func (cs *consoleSocket) receive() (*os.File, error) {
	c, err := cs.l.AcceptUnix()
	if err != nil {
		return nil, fmt.Errorf("console socket accept: %w", err)
	}
	defer c.Close()
	name := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4*4))
	_, oobn, _, _, err := c.ReadMsgUnix(name, oob)
	if err != nil {
		return nil, fmt.Errorf("console socket read: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	var fds []int
	for _, m := range msgs {
		got, err := unix.ParseUnixRights(&m)
		if err == nil {
			fds = append(fds, got...)
		}
	}
	if len(fds) == 0 {
		return nil, errors.New("console socket: the runtime sent no pty")
	}
	for _, fd := range fds[1:] {
		unix.Close(fd)
	}
	syscall.CloseOnExec(fds[0])
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		return nil, fmt.Errorf("console: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "pty-master"), nil
}

func (cs *consoleSocket) close() {
	if cs.l != nil {
		cs.l.Close()
	}
	cs.cleanup()
}

func (cs *consoleSocket) cleanup() {
	_ = os.Remove(cs.path)
	if cs.tempDir != "" {
		_ = os.RemoveAll(cs.tempDir)
	}
}

// setWinsize sets the pty's size.
func setWinsize(pty *os.File, sz Size) error {
	rc, err := pty.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	err = rc.Control(func(fd uintptr) {
		ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: sz.Height, Col: sz.Width})
	})
	if err != nil {
		return err
	}
	return ierr
}
