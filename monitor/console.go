package monitor

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// consoleSocket receives the pty master that the runtime sends over
// --console-socket (the OCI runtime convention: one SCM_RIGHTS message on a
// stream socket).
type consoleSocket struct {
	path    string
	tempDir string
	l       *listener
}

// newConsoleSocket listens beside the pid file, or in a private temp dir
// when that path is too long for the runtime (which connects by plain path).
func newConsoleSocket(cfg *Config) (*consoleSocket, error) {
	cs := &consoleSocket{path: filepath.Join(filepath.Dir(cfg.PidFile), "console-"+cfg.ID+".sock")}
	if len(cs.path) > maxSunPath {
		dir, err := mkdirTemp("berth-console-")
		if err != nil {
			return nil, wrap(err, "console socket dir")
		}
		cs.tempDir = dir
		cs.path = filepath.Join(dir, "console.sock")
	}
	_ = os.Remove(cs.path)
	// A stream socket at a plain path: the runtime connects by path and
	// sends the pty in one SCM_RIGHTS message.
	l, err := listenUnix(cs.path, unix.SOCK_STREAM)
	if err != nil {
		cs.cleanup()
		return nil, wrap(err, "console socket")
	}
	cs.l = l
	return cs, nil
}

// receive accepts the runtime's connection and returns the pty master,
// non-blocking so reads go through the runtime poller.
func (cs *consoleSocket) receive() (*os.File, error) {
	c, err := cs.l.accept()
	if err != nil {
		return nil, wrap(err, "console socket accept")
	}
	defer c.Close()
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, wrap(err, "console socket")
	}
	name := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4*4))
	var oobn int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		_, oobn, _, _, rerr = unix.Recvmsg(int(fd), name, oob, unix.MSG_CMSG_CLOEXEC)
		return rerr != unix.EAGAIN
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return nil, wrap(err, "console socket read")
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, wrap(err, "console socket")
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
		return nil, wrap(err, "console")
	}
	return os.NewFile(uintptr(fds[0]), "pty-master"), nil
}

// setDeadline bounds the wait in receive.
func (cs *consoleSocket) setDeadline(t time.Time) { _ = cs.l.f.SetDeadline(t) }

func (cs *consoleSocket) close() {
	if cs.l != nil {
		cs.l.close()
	}
	cs.cleanup()
}

func (cs *consoleSocket) cleanup() {
	_ = os.Remove(cs.path)
	if cs.tempDir != "" {
		_ = os.Remove(cs.tempDir) // it held the socket only
	}
}

// Size is a terminal size in characters.
type Size struct {
	Width, Height uint16
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

// mkdirTemp makes a new directory, mode 0700, in os.TempDir(). It is
// os.MkdirTemp, which links os.Stat and so time's formatting.
func mkdirTemp(prefix string) (string, error) {
	var rnd [8]byte
	for range 100 {
		if _, err := unix.Getrandom(rnd[:], 0); err != nil {
			return "", err
		}
		dir := filepath.Join(os.TempDir(), prefix+strconv.FormatUint(binary.LittleEndian.Uint64(rnd[:]), 36))
		err := unix.Mkdir(dir, 0o700)
		if err == nil {
			return dir, nil
		}
		if err != unix.EEXIST {
			return "", &os.PathError{Op: "mkdir", Path: dir, Err: err}
		}
	}
	return "", errors.New("mkdir temp: no free name")
}
