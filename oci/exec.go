package oci

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-cri/berth/errdefs"
	"github.com/berth-cri/berth/monitorclient"
)

// execReapWait bounds the wait for a killed exec's monitor to record the
// exit (it drains output for at most two seconds first).
const execReapWait = 30 * time.Second

// ExecResult is what an ExecSync command produced.
type ExecResult struct {
	Stdout, Stderr []byte
	ExitCode       int32
}

// ExecSync runs cmd in the running container with the container's process
// settings (user, env, capabilities, ...) and returns its output (both
// streams together capped at ExecSyncMaxOutput) and exit code. With a
// timeout, the command is killed when it passes and the error wraps
// context.DeadlineExceeded.
//
// The container's own monitor runs the command (`<runtime> exec
// --detach`; the monitor is a subreaper), asked on its control socket, so
// a probe costs no process but the runtime's. A monitor from an older
// berthd does not know the request: the command then runs under a
// monitor of its own, spawned for it (execUnderNewMonitor). Either way
// not under a foreground `<runtime> exec`: a foreground runtime copies
// the output through pipes of its own and would wait forever for a
// background process the command left holding them (`sh -c "daemon &"`),
// while the monitor reaps the command, drains its output for at most two
// seconds and reports the exit code. Nothing stays behind: the scratch
// files (process, pid, exit, output) are removed.
func (m *Manager) ExecSync(ctx context.Context, c *Container, cmd []string, timeout time.Duration) (*ExecResult, error) {
	if len(cmd) == 0 || cmd[0] == "" {
		return nil, errdefs.Invalidf("exec: no command")
	}
	id, rt, err := c.runningRuntime()
	if err != nil {
		return nil, err
	}
	cfg, cleanup, err := c.execSession(id, rt, cmd, nil, true)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	// Log no more than readExecOutput keeps.
	cfg.MaxOutput = int64(m.opts.ExecSyncMaxOutput)

	runCtx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	code, err := monitorclient.ExecIn(runCtx, c.paths.control(), cfg)
	if errors.Is(err, monitorclient.ErrUnsupported) {
		logFor(id).Debugf("exec %q under a monitor of its own: %v", cmd, err)
		code, err = m.execUnderNewMonitor(ctx, runCtx, cfg)
	}
	if err != nil {
		return nil, execError(ctx, runCtx, id, cmd, timeout, err)
	}
	release, err := m.reserveExecOutput(ctx, id, cfg.LogPath)
	if err != nil {
		return nil, err
	}
	defer release()
	stdout, stderr, err := readExecOutput(cfg.LogPath, m.opts.ExecSyncMaxOutput)
	if err != nil {
		return nil, fmt.Errorf("exec in %s: %w", id, err)
	}
	stdout, stderr = fitOutput(stdout, stderr, m.opts.ExecSyncMaxOutput)
	return &ExecResult{Stdout: stdout, Stderr: stderr, ExitCode: code}, nil
}

// execUnderNewMonitor runs the exec session cfg under a berth-monitor of
// its own (the way before monitors ran execs) and returns its exit code.
// When runCtx ends first, the command is killed through that monitor and
// the monitor reaped, so nothing outlives the call.
func (m *Manager) execUnderNewMonitor(ctx, runCtx context.Context, cfg monitorclient.Config) (int32, error) {
	st, err := monitorclient.Start(runCtx, m.opts.MonitorPath, cfg)
	if err != nil {
		return 0, err
	}
	exit, err := monitorclient.WaitExit(runCtx, cfg.ExitFile, st.MonitorPID, nil)
	if err != nil {
		// Timed out (or the caller left): kill the command through its
		// monitor (its parent, held by a pidfd: never a pid that may
		// have been reused), and wait for the monitor to reap it and
		// go.
		if kerr := st.KillExec(); kerr != nil {
			logFor(cfg.ID).Warnf("exec: %v", kerr)
		}
		reapCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), execReapWait)
		defer cancel()
		if _, werr := monitorclient.WaitExit(reapCtx, cfg.ExitFile, st.MonitorPID, nil); werr != nil && !errors.Is(werr, monitorclient.ErrMonitorGone) {
			logFor(cfg.ID).Warnf("exec: killed command not reaped: %v", werr)
		}
		return 0, err
	}
	return exit.ExitCode, nil
}

// DefaultExecSyncOutputBudget is the ExecSync output berthd holds in
// memory at once, every call together, by default.
const DefaultExecSyncOutputBudget = 256 << 20

// reserveExecOutput takes the memory for reading an exec's output from
// the node's budget: the size of its output log (the decoded output is
// smaller), at most what readExecOutput keeps. It waits while other calls
// hold the budget, up to the caller's deadline; an output that cannot
// have it is refused as ResourceExhausted. Most probes print little, so
// a call reserves what its command printed, not its cap.
func (m *Manager) reserveExecOutput(ctx context.Context, id, path string) (release func(), err error) {
	var size int64
	if fi, err := os.Stat(path); err == nil {
		size = min(fi.Size(), 2*int64(m.opts.ExecSyncMaxOutput))
	}
	if size == 0 {
		return func() {}, nil
	}
	if size > m.opts.ExecSyncOutputBudget {
		return nil, errdefs.ResourceExhausted(fmt.Errorf("exec in %s: %d bytes of output exceed the node's ExecSync output budget of %d bytes (runtime.exec_sync_output_budget)",
			id, size, m.opts.ExecSyncOutputBudget))
	}
	if err := m.execOut.Acquire(ctx, size); err != nil {
		return nil, errdefs.ResourceExhausted(fmt.Errorf("exec in %s: %d bytes of output: the node's ExecSync output budget of %d bytes (runtime.exec_sync_output_budget) stayed in use by other calls until the deadline: %w",
			id, size, m.opts.ExecSyncOutputBudget, err))
	}
	return func() { m.execOut.Release(size) }, nil
}

// execError explains a failed exec: its timeout (DeadlineExceeded, which
// kubelet's probes read as a probe timeout), the caller going away, or
// the runtime's refusal.
func execError(ctx, runCtx context.Context, id string, cmd []string, timeout time.Duration, err error) error {
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("exec in %s: %w", id, ctx.Err())
	case runCtx.Err() != nil:
		return fmt.Errorf("exec in %s: command %q timed out after %s: %w", id, cmd, timeout, context.DeadlineExceeded)
	}
	return execStartError(id, cmd, err)
}

// execStartError explains why an exec session did not start. The
// runtime refusing the command (not found, not executable) is the
// client's mistake, not the node's: FailedPrecondition, for ExecSync and
// ExecStream alike.
func execStartError(id string, cmd []string, err error) error {
	var rerr *monitorclient.RuntimeError
	if errors.As(err, &rerr) {
		return errdefs.FailedPreconditionf("exec %q in %s: %s", cmd, id, rerr.Message)
	}
	return fmt.Errorf("exec in %s: %w", id, err)
}

// writeExecProcess writes the process of one exec: the container's own
// process settings with cmd as its arguments, and a terminal of the
// given size when tty is not nil.
// execSession writes cmd's process spec for an exec session in c and
// returns the session's monitor config, with the pid, exit and runtime
// log files beside the spec (and the output log when logged), and the
// function that removes them all.
func (c *Container) execSession(id string, rt Runtime, cmd []string, tty *rspec.Box, logged bool) (monitorclient.Config, func(), error) {
	procFile, err := c.writeExecProcess(cmd, tty)
	if err != nil {
		return monitorclient.Config{}, nil, err
	}
	stem := strings.TrimSuffix(procFile, ".json")
	cfg := monitorclient.Config{
		ID:             id,
		Bundle:         c.paths.run,
		RuntimePath:    rt.Path,
		RuntimeRoot:    rt.Root,
		RuntimeArgs:    rt.globalArgs(),
		ExecProcess:    procFile,
		PidFile:        stem + ".pid",
		ExitFile:       stem + ".exit",
		RuntimeLogPath: stem + ".runtime.log",
		MonitorLogPath: c.paths.monLog(),
	}
	if logged {
		cfg.LogPath = stem + ".log"
	}
	cleanup := func() {
		for _, f := range []string{procFile, cfg.PidFile, cfg.ExitFile, cfg.LogPath, cfg.RuntimeLogPath} {
			if f != "" {
				os.Remove(f)
			}
		}
	}
	return cfg, cleanup, nil
}

func (c *Container) writeExecProcess(cmd []string, tty *rspec.Box) (string, error) {
	base, err := c.execProcess()
	if err != nil {
		return "", err
	}
	p := *base
	p.Args = cmd
	p.Terminal = false
	p.ConsoleSize = nil
	if tty != nil {
		p.Terminal = true
		if tty.Width > 0 && tty.Height > 0 {
			p.ConsoleSize = tty
		}
		p.Env = withTerm(p.Env)
	}
	b, err := json.Marshal(&p)
	if err != nil {
		return "", fmt.Errorf("exec in %s: encode process: %w", c.ID(), err)
	}
	f, err := os.CreateTemp(c.paths.run, "exec-*.json")
	if err != nil {
		return "", fmt.Errorf("exec in %s: %w", c.ID(), err)
	}
	_, werr := f.Write(b)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("exec in %s: write process: %w", c.ID(), werr)
	}
	return f.Name(), nil
}

// execProcess is the container's process settings, read once from its
// bundle: what every exec in it starts from.
func (c *Container) execProcess() (*rspec.Process, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.execBase != nil {
		return c.execBase, nil
	}
	b, err := os.ReadFile(c.paths.spec())
	if err != nil {
		return nil, fmt.Errorf("exec in %s: read spec: %w", c.rec.ID, err)
	}
	var s struct {
		Process *rspec.Process `json:"process"`
	}
	if err := json.Unmarshal(b, &s); err != nil || s.Process == nil {
		return nil, fmt.Errorf("exec in %s: parse spec: %v", c.rec.ID, err)
	}
	c.execBase = s.Process
	return s.Process, nil
}

// readExecOutput turns the monitor's CRI log of an exec back into its
// stdout and stderr, each cut at max bytes: an "F" record is a line and
// its newline, a "P" record text without one.
func readExecOutput(path string, max int) (stdout, stderr []byte, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil // no output at all
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read exec output: %w", err)
	}
	defer f.Close()
	out := map[string]*cappedBuffer{"stdout": {max: max}, "stderr": {max: max}}
	r := bufio.NewReaderSize(f, 64*1024)
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A record longer than the reader's buffer: the monitor cuts
			// lines at 16 KiB, so this is not its format.
			return nil, nil, fmt.Errorf("read exec output: record over %d bytes", r.Size())
		}
		if len(line) > 0 {
			// <time> <stream> <tag> <text>\n
			parts := bytes.SplitN(bytes.TrimSuffix(line, []byte("\n")), []byte(" "), 4)
			if len(parts) >= 3 {
				if b := out[string(parts[1])]; b != nil {
					if len(parts) == 4 {
						b.Write(parts[3])
					}
					if string(parts[2]) == "F" {
						b.Write([]byte("\n"))
					}
				}
			}
		}
		if err != nil {
			break
		}
	}
	return out["stdout"].buf, out["stderr"].buf, nil
}

// fitOutput cuts stdout and stderr to max bytes together, so the answer
// fits in one message: a stream shorter than half keeps all of it, and
// the other gets the rest.
func fitOutput(stdout, stderr []byte, max int) ([]byte, []byte) {
	if len(stdout)+len(stderr) <= max {
		return stdout, stderr
	}
	half := max / 2
	switch {
	case len(stdout) <= half:
		stderr = stderr[:max-len(stdout)]
	case len(stderr) <= half:
		stdout = stdout[:max-len(stderr)]
	default:
		stdout, stderr = stdout[:half], stderr[:max-half]
	}
	return stdout, stderr
}

// cappedBuffer keeps the first max bytes written and drops the rest.
type cappedBuffer struct {
	buf []byte
	max int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := b.max - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}
