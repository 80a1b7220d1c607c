package monitor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// control sends one request on the control socket and returns the reply's
// detail after "ok".
func control(ctx context.Context, socket, req string) (string, error) {
	c, err := dialPacket(ctx, socket)
	if err != nil {
		return "", err
	}
	defer c.Close()
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
