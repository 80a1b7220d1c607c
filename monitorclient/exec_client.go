package monitorclient

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/berth-cri/berth/monitor"
)

// ErrUnsupported means the container's monitor did not take the request
// (it predates the request, or has no control socket listening): nothing
// was done, and the caller takes the older way to the same end (for an
// exec, a monitor of its own; for a signal, the runtime's kill).
var ErrUnsupported = errors.New("the container's monitor does not support the request")

// killedReplyWait bounds the wait for the monitor's reply once the
// command was killed: it drains the output for at most two seconds.
const killedReplyWait = 30 * time.Second

// ExecIn runs the exec session cfg describes (cfg.ExecProcess, its pid,
// runtime log and output log files, MaxOutput) through the running
// container's own monitor, at controlSocket, and returns the command's
// exit code (128+signal when killed by one), as Start and WaitExit would
// for a monitor of its own, without a new monitor process.
//
// When ctx ends first the command is killed, ExecIn waits for the monitor
// to have reaped it (so nothing outlives the call) and returns an error
// wrapping ctx's. A runtime that refused the command gives an error
// wrapping *RuntimeError. A monitor that does not run execs gives
// ErrUnsupported, and nothing ran.
func ExecIn(ctx context.Context, controlSocket string, cfg Config) (int32, error) {
	if err := cfg.Validate(); err != nil {
		return 0, err
	}
	req := append([]byte(monitor.CtlExec+"\n"), cfg.Encode()...)
	if len(req) > monitor.CtlExecMaxRequest {
		return 0, fmt.Errorf("%w: the request's %d bytes exceed the control socket's %d", ErrUnsupported, len(req), monitor.CtlExecMaxRequest)
	}
	rtLog := monitor.RuntimeLogPath(&cfg)
	var rtLogOffset int64
	if fi, err := os.Stat(rtLog); err == nil {
		rtLogOffset = fi.Size()
	}
	c, err := dialPacket(ctx, controlSocket)
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctxOr(ctx, err)
		}
		return 0, fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	defer c.Close()
	if _, err := c.Write(req); err != nil {
		return 0, ctxOr(ctx, fmt.Errorf("send exec: %w", err))
	}
	type answer struct {
		reply string
		err   error
	}
	got := make(chan answer, 1)
	go func() {
		buf := make([]byte, 4096)
		n, err := c.Read(buf)
		got <- answer{string(buf[:n]), err}
	}()
	var a answer
	select {
	case a = <-got:
	case <-ctx.Done():
		// Kill the command, and wait for the monitor to say it is gone.
		_ = c.SetDeadline(time.Now().Add(killedReplyWait))
		if _, err := c.Write([]byte(monitor.CtlExecKill)); err != nil {
			return 0, fmt.Errorf("%w (kill the exec: %v)", ctx.Err(), err)
		}
		if a = <-got; a.err != nil {
			return 0, fmt.Errorf("%w (killed exec not reaped: %v)", ctx.Err(), a.err)
		}
		return 0, ctx.Err()
	}
	if a.err != nil {
		return 0, fmt.Errorf("exec in %s: the monitor hung up without an answer (%v)", cfg.ID, a.err)
	}
	return execReply(cfg, a.reply, rtLog, rtLogOffset)
}

// execReply reads the monitor's answer to an exec.
func execReply(cfg Config, reply, rtLog string, rtLogOffset int64) (int32, error) {
	key, val, _ := strings.Cut(reply, " ")
	switch key {
	case monitor.ExecReplyExit:
		code, err := strconv.ParseInt(val, 10, 32)
		if err != nil {
			return 0, fmt.Errorf("exec in %s: bad reply %q", cfg.ID, reply)
		}
		return int32(code), nil
	case monitor.ExecReplyRuntime:
		msg, err := strconv.Unquote(val)
		if err != nil {
			return 0, fmt.Errorf("exec in %s: bad reply %q", cfg.ID, reply)
		}
		if logged := lastLoggedError(rtLog, rtLogOffset); logged != "" {
			msg = logged
		}
		return 0, fmt.Errorf("container %s: runtime %s: %w", cfg.ID, filepath.Base(cfg.RuntimePath), &RuntimeError{Message: msg})
	case "error:":
		if strings.HasPrefix(val, "unknown request") {
			// A monitor from before execs on the control socket.
			return 0, fmt.Errorf("%w: %s", ErrUnsupported, val)
		}
		return 0, fmt.Errorf("exec in %s: monitor: %s", cfg.ID, val)
	}
	return 0, fmt.Errorf("exec in %s: bad reply %q", cfg.ID, reply)
}
