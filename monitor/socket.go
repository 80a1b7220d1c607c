package monitor

// Unix sockets on raw fds. The monitor serves few connections and speaks
// no stream protocol, so an *os.File on a non-blocking socket (which the
// runtime's poller then serves like a net.Conn: no thread per waiting
// read) is all it needs; package net would add about 300 KiB of code,
// tables and DNS-resolver state to every monitor (see wire.go).

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxSunPath is sizeof(sockaddr_un.sun_path) minus the terminating NUL.
const maxSunPath = 107

// SocketName returns a name the kernel accepts in a sockaddr_un for path,
// and a func to call once bind or connect is done. Run dirs under long
// roots (test temp dirs, deep state roots) easily pass 107 bytes, so a
// longer path is reached through its directory's fd in /proc/self/fd,
// as conmon and podman do.
func SocketName(path string) (string, func(), error) {
	if len(path) <= maxSunPath {
		return path, func() {}, nil
	}
	dir, err := unix.Open(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, wrap(err, "open socket dir")
	}
	name := "/proc/self/fd/" + strconv.Itoa(dir) + "/" + filepath.Base(path)
	if len(name) > maxSunPath {
		unix.Close(dir)
		return "", nil, errors.New("socket name " + strconv.Quote(filepath.Base(path)) + " too long")
	}
	return name, func() { unix.Close(dir) }, nil
}

// listener is a listening unix socket whose accept waits in the poller.
type listener struct {
	f  *os.File
	rc syscall.RawConn
}

// listenUnix binds a socket of type typ (SOCK_SEQPACKET, SOCK_STREAM) at
// path, replacing a stale socket a dead monitor left, and makes it
// root-only. The caller removes the path.
func listenUnix(path string, typ int) (*listener, error) {
	if st, err := lstat(path); err == nil && st.Mode&unix.S_IFMT == unix.S_IFSOCK {
		_ = os.Remove(path)
	}
	name, done, err := SocketName(path)
	if err != nil {
		return nil, err
	}
	defer done()
	fd, err := unix.Socket(unix.AF_UNIX, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, wrap(err, "listen ", path)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: name}); err != nil {
		unix.Close(fd)
		return nil, wrap(err, "listen ", path)
	}
	if err := unix.Listen(fd, 64); err != nil {
		unix.Close(fd)
		os.Remove(path)
		return nil, wrap(err, "listen ", path)
	}
	l := &listener{f: os.NewFile(uintptr(fd), path)}
	if l.rc, err = l.f.SyscallConn(); err != nil {
		l.f.Close()
		os.Remove(path)
		return nil, wrap(err, "listen ", path)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.f.Close()
		os.Remove(path)
		return nil, wrap(err, "chmod ", path)
	}
	return l, nil
}

// listenPacket listens for seqpacket connections at path.
func listenPacket(path string) (*listener, error) {
	return listenUnix(path, unix.SOCK_SEQPACKET)
}

// accept waits for a connection; it fails once the listener is closed or
// its deadline passed.
func (l *listener) accept() (*os.File, error) {
	var nfd int
	var aerr error
	err := l.rc.Read(func(fd uintptr) bool {
		for {
			nfd, _, aerr = unix.Accept4(int(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
			if aerr != unix.EINTR && aerr != unix.ECONNABORTED {
				return aerr != unix.EAGAIN
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if aerr != nil {
		return nil, wrap(aerr, "accept on ", l.f.Name())
	}
	return os.NewFile(uintptr(nfd), l.f.Name()), nil
}

func (l *listener) close() error { return l.f.Close() }

// connFile makes an *os.File of an inherited connected socket fd, non-blocking
// so its reads wait in the poller. It fails if fd is not a socket.
func connFile(fd int, name string) (*os.File, error) {
	if _, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); err != nil {
		return nil, wrap(err, name+" fd "+strconv.Itoa(fd)+" is not a socket")
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, wrap(err, name)
	}
	unix.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), name), nil
}

// lstat is os.Lstat without os.FileInfo, whose time.Time would link
// time's formatting and zone loading into the monitor.
func lstat(path string) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Lstat(path, &st)
	return st, err
}
