package streaming

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	goruntime "runtime"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// dialTimeout bounds one connection attempt to the pod's port.
const dialTimeout = 10 * time.Second

// forward connects to port on the pod's loopback (IPv4, else IPv6) inside
// netns ("" for the host's) and copies between it and stream until the pod
// side closes, or both sides are done. A port nobody listens on is an
// error, which the library sends back on the stream's error channel.
func forward(ctx context.Context, netns string, port int32, stream io.ReadWriteCloser) error {
	if port <= 0 || port > 65535 {
		return fmt.Errorf("port %d is out of range", port)
	}
	conn, err := dialIn(netns, int(port))
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	// client -> pod; the client's end of data is the pod's end of input.
	go func() {
		_, _ = io.Copy(conn, stream)
		_ = conn.CloseWrite()
	}()
	// pod -> client, until the pod closes (or the stream fails).
	if _, err := io.Copy(stream, conn); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("port %d: %w", port, err)
	}
	return nil
}

// dialIn dials the port in netns. The socket is made on an OS thread
// that has entered netns (a socket belongs to the namespace of the thread
// that creates it; connect and I/O then work from any thread), as
// containerd does: no nsenter or socat. The thread goes back to berthd's
// own namespace before it is unlocked; if it cannot, it is left locked so
// the Go runtime ends it.
func dialIn(netns string, port int) (*net.TCPConn, error) {
	if netns == "" {
		return dialLoopback(port)
	}
	type result struct {
		c   *net.TCPConn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		goruntime.LockOSThread()
		c, err, restored := dialFromThread(netns, port)
		if restored {
			goruntime.UnlockOSThread()
		}
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

func dialFromThread(netns string, port int) (c *net.TCPConn, err error, restored bool) {
	own, err := os.Open(fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid()))
	if err != nil {
		return nil, fmt.Errorf("open own network namespace: %w", err), true
	}
	defer own.Close()
	target, err := os.Open(netns)
	if err != nil {
		return nil, fmt.Errorf("open pod network namespace: %w", err), true
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return nil, fmt.Errorf("enter pod network namespace: %w", err), true
	}
	c, err = dialLoopback(port)
	if rerr := unix.Setns(int(own.Fd()), unix.CLONE_NEWNET); rerr != nil {
		return c, err, false
	}
	return c, err, true
}

// dialLoopback connects to 127.0.0.1:port, or [::1]:port when nothing
// answers on IPv4 (a server bound to IPv6 only).
func dialLoopback(port int) (*net.TCPConn, error) {
	d := net.Dialer{Timeout: dialTimeout}
	c, err4 := d.Dial("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err4 == nil {
		return c.(*net.TCPConn), nil
	}
	c, err6 := d.Dial("tcp6", net.JoinHostPort("::1", strconv.Itoa(port)))
	if err6 == nil {
		return c.(*net.TCPConn), nil
	}
	return nil, fmt.Errorf("nothing listens on port %d in the pod: %v; %v", port, err4, err6)
}
