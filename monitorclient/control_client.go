package monitorclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-cri/berth/monitor"
)

// control sends one request on the control socket and returns the reply's
// detail after "ok".
func control(ctx context.Context, socket, req string) (string, error) {
	c, err := dialPacket(ctx, socket)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return controlOn(ctx, c, req)
}

// controlOn sends one request on a control connection and returns the
// reply's detail after "ok".
func controlOn(ctx context.Context, c *net.UnixConn, req string) (string, error) {
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := c.Write([]byte(req)); err != nil {
		return "", ctxOr(ctx, fmt.Errorf("send %s: %w", req, err))
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		return "", ctxOr(ctx, fmt.Errorf("read reply to %s: %w", req, err))
	}
	reply := string(buf[:n])
	switch {
	case reply == "ok":
		return "", nil
	case strings.HasPrefix(reply, "ok "):
		return reply[3:], nil
	case strings.HasPrefix(reply, "error: "):
		return "", errors.New(reply[7:])
	}
	return "", fmt.Errorf("bad reply to %s: %q", req, reply)
}

// ctxOr prefers ctx's error, so a cancelled call says so.
func ctxOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

// ErrExited means the container's init had already exited (and been
// reaped by its monitor) when a signal was asked for.
var ErrExited = errors.New("the container's init has exited")

// Signal asks the container's monitor to send sig to the container's
// init, its child: what the runtime's `kill ID SIG` does, without an
// exec. A monitor that does not know the request gives ErrUnsupported
// (nothing was sent); an init already gone, ErrExited.
func Signal(ctx context.Context, controlSocket string, sig syscall.Signal) error {
	c, err := dialPacket(ctx, controlSocket)
	if err != nil {
		if ctx.Err() != nil {
			return ctxOr(ctx, err)
		}
		return fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	defer c.Close()
	_, err = controlOn(ctx, c, monitor.CtlSignal+" "+strconv.Itoa(int(sig)))
	switch {
	case err == nil:
		return nil
	case err.Error() == monitor.CtlExited:
		return ErrExited
	case strings.HasPrefix(err.Error(), "unknown request"):
		return fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	return fmt.Errorf("signal %d: %w", int(sig), err)
}
