package monitor

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// maxSunPath is sizeof(sockaddr_un.sun_path) minus the terminating NUL.
const maxSunPath = 107

// socketName returns a name the kernel accepts in a sockaddr_un for path,
// and a func to call once bind or connect is done. Run dirs under long
// roots (test temp dirs, deep state roots) easily pass 107 bytes, so a
// longer path is reached through its directory's fd in /proc/self/fd,
// as conmon and podman do.
func socketName(path string) (string, func(), error) {
	if len(path) <= maxSunPath {
		return path, func() {}, nil
	}
	dir, err := os.OpenFile(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, fmt.Errorf("open socket dir: %w", err)
	}
	name := fmt.Sprintf("/proc/self/fd/%d/%s", dir.Fd(), filepath.Base(path))
	if len(name) > maxSunPath {
		dir.Close()
		return "", nil, fmt.Errorf("socket name %q too long", filepath.Base(path))
	}
	return name, func() { dir.Close() }, nil
}

// dialPacket connects to the seqpacket socket at path.
func dialPacket(ctx context.Context, path string) (*net.UnixConn, error) {
	name, done, err := socketName(path)
	if err != nil {
		return nil, err
	}
	defer done()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unixpacket", name)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", path, err)
	}
	return c.(*net.UnixConn), nil
}

// listenPacket binds a seqpacket socket at path, replacing a stale socket a
// dead monitor left, and makes it root-only. The caller removes the path.
func listenPacket(path string) (*net.UnixListener, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		_ = os.Remove(path)
	}
	name, done, err := socketName(path)
	if err != nil {
		return nil, err
	}
	defer done()
	l, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: name, Net: "unixpacket"})
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	// The name may be a /proc/self/fd alias that is gone by Close time.
	l.SetUnlinkOnClose(false)
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		os.Remove(path)
		return nil, fmt.Errorf("chmod %s: %w", path, err)
	}
	return l, nil
}
