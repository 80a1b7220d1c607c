package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-cri/berth/errdefs"
	"github.com/berth-cri/berth/monitorclient"
)

// firstSizeWait bounds how long a tty exec waits for the client's first
// terminal size before it starts the command, so that the command starts
// with the right size (`stty size` as its first act sees it). Clients with
// a terminal send it at once; clients without one send none.
const firstSizeWait = 250 * time.Millisecond

// StreamIO is the client's side of a streamed exec or attach. A nil
// Stdin means no input; a nil Stdout or Stderr discards that stream.
// Resize carries terminal sizes (tty only; nil for none).
type StreamIO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Tty            bool
	Resize         <-chan monitorclient.Size
}

// ExecStream runs cmd in the running container with the client's stdio,
// as kubectl exec does: the command runs in a monitor exec session (as for
// ExecSync) whose stdio is streamed to the caller from its first byte,
// with a pty when s.Tty. It returns the command's exit code once the
// command exited and its output was delivered.
//
// If ctx ends first (the client went away), the monitor kills the command
// and ExecStream waits for it to be reaped, so nothing outlives the call,
// and returns ctx's error.
func (m *Manager) ExecStream(ctx context.Context, c *Container, cmd []string, s StreamIO) (int32, error) {
	if len(cmd) == 0 || cmd[0] == "" {
		return 0, errdefs.Invalidf("exec: no command")
	}
	id, rt, err := c.runningRuntime()
	if err != nil {
		return 0, err
	}
	var tty *rspec.Box
	if s.Tty {
		tty = &rspec.Box{}
		if sz, ok := firstSize(ctx, s.Resize); ok {
			tty.Width, tty.Height = uint(sz.Width), uint(sz.Height)
		}
	}
	cfg, cleanup, err := c.execSession(id, rt, cmd, tty, false)
	if err != nil {
		return 0, err
	}
	defer cleanup()
	cfg.Terminal = s.Tty
	// The client's end of input ends the command's: a pipe is closed, a
	// tty gets ^D.
	cfg.Stdin, cfg.StdinOnce = s.Stdin != nil, s.Stdin != nil
	st, sess, err := monitorclient.StartAttached(ctx, m.opts.MonitorPath, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return 0, fmt.Errorf("exec in %s: %w", id, ctx.Err())
		}
		return 0, execStartError(id, cmd, err)
	}
	streamErr := sess.Stream(ctx, s.Stdin, s.Stdout, s.Stderr, s.Resize)
	// Hanging up kills the command if it still runs; then wait for its
	// monitor to reap it and go.
	sess.Close()
	reapCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), execReapWait)
	defer cancel()
	exit, err := monitorclient.WaitExit(reapCtx, cfg.ExitFile, st.MonitorPID, nil)
	switch {
	case streamErr != nil:
		if err != nil && !errors.Is(err, monitorclient.ErrMonitorGone) {
			logFor(id).Warnf("exec %q: abandoned command not reaped: %v", cmd, err)
		}
		return 0, fmt.Errorf("exec in %s: %w", id, streamErr)
	case err != nil:
		return 0, fmt.Errorf("exec in %s: %w", id, err)
	}
	return exit.ExitCode, nil
}

// Attach joins the running container's stdio through its monitor's
// attach socket: output from now on, input when the container was created
// with stdin (and, for a StdinOnce container, its input ends when this
// client's does), resizes on a tty container. It returns nil when the
// container exited, or ctx's error.
func (m *Manager) Attach(ctx context.Context, c *Container, s StreamIO) error {
	id, _, err := c.runningRuntime()
	if err != nil {
		return err
	}
	rec := c.Record()
	stdin, resize := s.Stdin, s.Resize
	if !rec.Stdin {
		stdin = nil // the container reads /dev/null
	}
	if !rec.Tty {
		resize = nil
	}
	if err := monitorclient.Attach(ctx, c.paths.attach(), stdin, s.Stdout, s.Stderr, resize); err != nil {
		return fmt.Errorf("attach to %s: %w", id, err)
	}
	return nil
}

// runningRuntime returns the container's id and runtime, or a
// failed-precondition error when it is not running.
func (c *Container) runningRuntime() (string, Runtime, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rec.State != StateRunning || c.removing {
		return "", Runtime{}, errdefs.FailedPreconditionf("container %s is not running", c.rec.ID)
	}
	return c.rec.ID, c.rec.Runtime, nil
}

// firstSize returns the client's first terminal size if it comes soon.
// A size taken here is the command's initial size.
func firstSize(ctx context.Context, resize <-chan monitorclient.Size) (monitorclient.Size, bool) {
	if resize == nil {
		return monitorclient.Size{}, false
	}
	t := time.NewTimer(firstSizeWait)
	defer t.Stop()
	select {
	case sz, ok := <-resize:
		return sz, ok
	case <-t.C:
	case <-ctx.Done():
	}
	return monitorclient.Size{}, false
}

// withTerm adds TERM=xterm unless the process sets TERM: a shell on a
// terminal needs to know what it is (kubelet's runtimes do the same).
func withTerm(env []string) []string {
	if slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "TERM=") }) {
		return env
	}
	return append(slices.Clip(env), "TERM=xterm")
}
