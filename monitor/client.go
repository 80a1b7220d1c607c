// Package monitor is berth-monitor, the per-container supervisor, and the
// client API berthd's oci package uses to drive it.
//
// berthd starts one monitor per container (and per exec session that needs
// its stdio kept). The monitor runs in its own session, makes itself a child
// subreaper, runs `<runtime> create` (or `exec --detach`) with stdio it owns
// (pipes, or the pty received over the console socket), reports the
// container's pid back, then outlives berthd: it writes the container's
// stdout/stderr to the CRI log file, serves attach and control sockets, and
// when the container's init exits it writes an exit file atomically and
// exits. The exit file is the only thing berthd needs to learn an exit, so a
// restarted berthd loses nothing.
//
// The life of a container, from berthd's side:
//
//	st, err := monitor.Start(ctx, monitorPath, cfg) // runtime create; st.ContainerPID
//	// berthd runs `<runtime> start ID` itself.
//	exit, err := monitor.WaitExit(ctx, cfg.ExitFile, st.MonitorPID)
//	// or, after a restart: monitor.ReadExitFile(cfg.ExitFile)
//	monitor.ReopenLog(ctx, cfg.ControlSocket) // kubelet's ReopenContainerLog
//	monitor.Attach(ctx, cfg.AttachSocket, stdin, stdout, stderr, resize)
//
// A container that is created but never started, then deleted
// (`<runtime> delete --force`), is killed by the runtime; the monitor sees its
// init die, writes the exit file (signal 9, code 137) and exits like any other.
//
// The monitor binary links only the standard library and golang.org/x/sys, so
// it stays small in memory; this package must not import the daemon's
// packages (errdefs, config, logrus, grpc). Callers mark errors with kinds.
package monitor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// DefaultMaxLineSize is the longest log line the monitor writes before it
// splits a line into partial ("P") records. 16 KiB is conmon's buffer size,
// and what kubelet's own log parser expects at most.
const DefaultMaxLineSize = 16 * 1024

// Config is everything the monitor needs for one container. berthd passes it
// to the monitor as JSON on the monitor's stdin.
type Config struct {
	// ID is the container id given to the runtime.
	ID string `json:"id"`
	// Bundle is the OCI bundle directory (holds config.json).
	Bundle string `json:"bundle"`
	// RuntimePath is the OCI runtime binary (runc, crun, berth-runner).
	RuntimePath string `json:"runtime_path"`
	// RuntimeRoot is passed as the runtime's global --root when set.
	RuntimeRoot string `json:"runtime_root,omitempty"`
	// RuntimeArgs are extra global flags placed before the subcommand
	// (e.g. --systemd-cgroup).
	RuntimeArgs []string `json:"runtime_args,omitempty"`
	// CreateArgs are extra flags for the create subcommand
	// (e.g. --no-pivot). Ignored for exec sessions.
	CreateArgs []string `json:"create_args,omitempty"`
	// RuntimeLogPath is the runtime's --log file (JSON lines); its last
	// error becomes Start's error text. Empty means <Bundle>/runtime.log.
	RuntimeLogPath string `json:"runtime_log_path,omitempty"`

	// ExecProcess, when set, makes this an exec session: the monitor runs
	// `<runtime> exec --detach --process ExecProcess ID` instead of create,
	// and the process runs at once (berthd does not call start).
	ExecProcess string `json:"exec_process,omitempty"`

	// PidFile is where the runtime writes the container's pid (--pid-file).
	// Required.
	PidFile string `json:"pid_file"`
	// ExitFile is where the monitor writes the Exit record when the
	// container's init exits. Required; its directory must exist.
	ExitFile string `json:"exit_file"`
	// LogPath is the CRI log file (kubelet format). Empty discards output.
	LogPath string `json:"log_path,omitempty"`
	// LogDir is the pod's log directory: LogPath is opened beneath it
	// without following symlinks. Empty means LogPath's directory.
	LogDir string `json:"log_dir,omitempty"`
	// MaxLineSize bounds one log record's text; 0 means DefaultMaxLineSize.
	MaxLineSize int `json:"max_line_size,omitempty"`
	// MaxOutput, when positive, is how many bytes of log records each
	// stream writes (timestamps and tags counted); the rest is read (and
	// sent to attach clients) but not written. An exec session whose caller keeps only that much must not
	// fill the run root, a tmpfs, with what a runaway command prints.
	MaxOutput int64 `json:"max_output,omitempty"`
	// AttachSocket is the unix socket serving attach; empty means none.
	AttachSocket string `json:"attach_socket,omitempty"`
	// ControlSocket is the unix socket serving ReopenLog and Ping; empty
	// means none.
	ControlSocket string `json:"control_socket,omitempty"`
	// MonitorLogPath receives the monitor's own diagnostics (appended).
	// Empty discards them.
	MonitorLogPath string `json:"-"`

	// Terminal gives the container a pty (the runtime's --console-socket);
	// its output is logged as stdout.
	Terminal bool `json:"terminal,omitempty"`
	// Stdin keeps the container's stdin open for attach; without it the
	// container reads /dev/null.
	Stdin bool `json:"stdin,omitempty"`
	// StdinOnce closes the container's stdin when the first attach session
	// closes its stdin (kubectl run -i semantics).
	StdinOnce bool `json:"stdin_once,omitempty"`

	// AttachFD, set by StartAttached, is the fd (in the monitor) of an
	// attach connection whose other end the caller holds: an exec session
	// streamed to one client. That client receives all output, with
	// backpressure instead of being dropped when slow, from before the
	// command starts; when it hangs up the command is killed.
	AttachFD int `json:"attach_fd,omitempty"`

	// CgroupPath is the container's memory cgroup directory (absolute, e.g.
	// /sys/fs/cgroup/memory/berth/ID), used to detect OOM kills. Empty means
	// the monitor finds it from /proc/<pid>/cgroup after create.
	CgroupPath string `json:"cgroup_path,omitempty"`
}

// Validate reports the first missing or malformed field. Start calls it.
func (c *Config) Validate() error {
	if c.ID == "" || strings.ContainsAny(c.ID, "/\x00") || c.ID == "." || c.ID == ".." {
		return fmt.Errorf("monitor config: invalid container id %q", c.ID)
	}
	for _, f := range []struct{ name, val string }{
		{"bundle", c.Bundle}, {"runtime_path", c.RuntimePath},
		{"pid_file", c.PidFile}, {"exit_file", c.ExitFile},
	} {
		if f.val == "" {
			return fmt.Errorf("monitor config: %s is required", f.name)
		}
	}
	for _, f := range []struct{ name, val string }{
		{"bundle", c.Bundle}, {"runtime_path", c.RuntimePath}, {"runtime_root", c.RuntimeRoot},
		{"runtime_log_path", c.RuntimeLogPath}, {"exec_process", c.ExecProcess},
		{"pid_file", c.PidFile}, {"exit_file", c.ExitFile}, {"log_path", c.LogPath}, {"log_dir", c.LogDir},
		{"attach_socket", c.AttachSocket}, {"control_socket", c.ControlSocket},
		{"monitor_log_path", c.MonitorLogPath}, {"cgroup_path", c.CgroupPath},
	} {
		if f.val != "" && !filepath.IsAbs(f.val) {
			return fmt.Errorf("monitor config: %s %q is not an absolute path", f.name, f.val)
		}
	}
	if c.LogDir != "" && c.LogPath != "" {
		if rel, err := filepath.Rel(c.LogDir, c.LogPath); err != nil || !filepath.IsLocal(rel) {
			return fmt.Errorf("monitor config: log_path %q is not beneath log_dir %q", c.LogPath, c.LogDir)
		}
	}
	if c.MaxLineSize < 0 {
		return fmt.Errorf("monitor config: max_line_size %d is negative", c.MaxLineSize)
	}
	if c.MaxOutput < 0 {
		return fmt.Errorf("monitor config: max_output %d is negative", c.MaxOutput)
	}
	if c.StdinOnce && !c.Stdin {
		return errors.New("monitor config: stdin_once needs stdin")
	}
	if c.AttachFD != 0 && (c.AttachFD < 3 || c.ExecProcess == "") {
		return fmt.Errorf("monitor config: attach_fd %d needs an exec session and an fd above 2", c.AttachFD)
	}
	return nil
}

// Started is what Start reports once the runtime created the container.
type Started struct {
	// MonitorPID is the monitor's pid (for WaitExit and for adoption after
	// a berthd restart).
	MonitorPID int
	// ContainerPID is the container's init pid as the runtime wrote it.
	ContainerPID int

	// proc is the monitor as this berthd started it: os.Process holds a
	// pidfd, so a signal never reaches a process that reused the pid.
	proc *os.Process
}

// KillExec ends an exec session's command: it signals the monitor (by
// its pidfd), which kills the command it is the parent of. A raw kill of
// ContainerPID could hit another process once the command was reaped and
// its pid reused. A session already over is no error.
func (s *Started) KillExec() error {
	if s.proc == nil {
		return errors.New("kill exec: the monitor was not started by this process")
	}
	if err := s.proc.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill exec: signal its monitor: %w", err)
	}
	return nil
}

// RuntimeError is the runtime's own account of why create or exec failed.
// Start returns it (wrapped) so the caller can show the runtime's words
// instead of "exit status 1".
type RuntimeError struct {
	// Message is the runtime's last error line (from its --log JSON, or its
	// stderr when it logged nothing).
	Message string
}

func (e *RuntimeError) Error() string { return e.Message }

// Start spawns the monitor for cfg and waits until it reports that the
// runtime created the container (its pid), or why it failed.
//
// The monitor runs detached: its own session and process group, working
// directory /, no inherited fds but its stdin (the config), stderr
// (cfg.MonitorLogPath or /dev/null) and the sync pipe. berthd's death
// does not reach it. Start reaps the monitor in a goroutine when it exits
// during this berthd's life; after a restart it belongs to init.
//
// Errors: a failed create returns an error wrapping *RuntimeError with the
// runtime's message; the monitor has exited and the runtime cleaned up after
// itself. If ctx ends before the monitor reported, Start kills the monitor's
// process group and runs `<runtime> delete --force ID`, so nothing is left
// behind, and returns ctx's error.
func Start(ctx context.Context, monitorBinary string, cfg Config) (*Started, error) {
	return start(ctx, monitorBinary, cfg, nil)
}

func start(ctx context.Context, monitorBinary string, cfg Config, attachEnd *os.File) (*Started, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	conf, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encode monitor config: %w", err)
	}
	syncR, syncW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("monitor sync pipe: %w", err)
	}
	defer syncR.Close()

	cmd := exec.Command(monitorBinary, "--id", cfg.ID)
	cmd.Dir = "/" // never pin a mount by the monitor's cwd
	cmd.Env = monitorEnv(os.Environ())
	cmd.Stdin = bytes.NewReader(conf)
	cmd.ExtraFiles = []*os.File{syncW}
	if attachEnd != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, attachEnd) // fd attachFD
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if cfg.MonitorLogPath != "" {
		f, err := os.OpenFile(cfg.MonitorLogPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
		if err != nil {
			syncW.Close()
			return nil, fmt.Errorf("open monitor log: %w", err)
		}
		defer f.Close()
		cmd.Stderr = f
	}
	if err := cmd.Start(); err != nil {
		syncW.Close()
		return nil, fmt.Errorf("start monitor %s: %w", monitorBinary, err)
	}
	syncW.Close()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()

	type result struct {
		msg syncMessage
		err error
	}
	got := make(chan result, 1)
	go func() {
		var m syncMessage
		err := json.NewDecoder(bufio.NewReader(syncR)).Decode(&m)
		got <- result{m, err}
	}()

	select {
	case r := <-got:
		switch {
		case r.err == nil && r.msg.Error != "":
			<-waited
			return nil, fmt.Errorf("container %s: runtime %s: %w", cfg.ID, filepath.Base(cfg.RuntimePath), &RuntimeError{Message: r.msg.Error})
		case r.err == nil && r.msg.Pid > 0:
			return &Started{MonitorPID: cmd.Process.Pid, ContainerPID: r.msg.Pid, proc: cmd.Process}, nil
		default:
			// The monitor died (or wrote garbage) before reporting.
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			werr := <-waited
			cleanupRuntime(cfg)
			return nil, fmt.Errorf("container %s: monitor exited before reporting (%v, %v)%s", cfg.ID, werr, r.err, logTail(cfg.MonitorLogPath))
		}
	case <-ctx.Done():
		// Kill the whole group: the monitor and the runtime it forked.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-waited
		cleanupRuntime(cfg)
		return nil, fmt.Errorf("container %s: waiting for monitor: %w", cfg.ID, ctx.Err())
	}
}

// monitorEnv is the monitor's environment: the caller's, the sync fd's
// name, and GOMAXPROCS=1. The monitor needs one P; set before its runtime
// starts (not by runtime.GOMAXPROCS in main) it also keeps the runtime
// from starting a second P's worth of threads and caches during init,
// about 190 KiB of private memory per monitor. The caller's own GOMAXPROCS,
// if any, travels in callerGOMAXPROCSEnv so the monitor can hand it to the
// OCI runtime unchanged.
func monitorEnv(environ []string) []string {
	env := make([]string, 0, len(environ)+3)
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "GOMAXPROCS="); ok {
			env = append(env, callerGOMAXPROCSEnv+"="+v)
			continue
		}
		if !strings.HasPrefix(kv, callerGOMAXPROCSEnv+"=") {
			env = append(env, kv)
		}
	}
	return append(env, fmt.Sprintf("%s=%d", SyncFDEnv, syncFD), "GOMAXPROCS=1")
}

// runtimeEnv is the environment the monitor gives the OCI runtime: its
// own, with the caller's GOMAXPROCS (or none) instead of the monitor's.
func runtimeEnv(environ []string) []string {
	env := make([]string, 0, len(environ))
	var caller string
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, callerGOMAXPROCSEnv+"="); ok {
			caller = "GOMAXPROCS=" + v
			continue
		}
		if !strings.HasPrefix(kv, "GOMAXPROCS=") {
			env = append(env, kv)
		}
	}
	if caller != "" {
		env = append(env, caller)
	}
	return env
}

// logTail returns the end of the monitor's own log, to explain its death.
func logTail(path string) string {
	if path == "" {
		return ""
	}
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const n = 512
	b := make([]byte, n)
	off := int64(0)
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		off = fi.Size() - n
	}
	m, _ := f.ReadAt(b, off)
	if t := strings.TrimSpace(string(b[:m])); t != "" {
		return ": " + t
	}
	return ""
}

// cleanupRuntime removes whatever a killed create left in the runtime.
func cleanupRuntime(cfg Config) {
	if cfg.ExecProcess != "" {
		return // an exec session never owns the container
	}
	args := append(globalArgs(&cfg), "delete", "--force", cfg.ID)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = exec.CommandContext(ctx, cfg.RuntimePath, args...).Run()
}

// Exit is the exit file's content: how the container's init ended.
type Exit struct {
	// Pid is the container init's pid.
	Pid int `json:"pid"`
	// ExitCode is the exit status, or 128+signal when a signal killed it
	// (the CRI convention).
	ExitCode int32 `json:"exit_code"`
	// Signal is the signal that killed the init, 0 when it exited.
	Signal int `json:"signal,omitempty"`
	// ExitedAt is when the monitor reaped the init.
	ExitedAt time.Time `json:"exited_at"`
	// OOMKilled reports that the kernel OOM killer killed a process of the
	// container's memory cgroup while it ran.
	OOMKilled bool `json:"oom_killed,omitempty"`
}

// ReadExitFile reads an exit file. When the container has not exited yet
// the error wraps os.ErrNotExist.
func ReadExitFile(path string) (*Exit, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read exit file: %w", err)
	}
	var e Exit
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("parse exit file %s: %w", path, err)
	}
	return &e, nil
}

// ErrMonitorGone means the monitor exited without writing an exit file
// (it was killed). The container's fate must then be asked of the runtime
// (`<runtime> state`).
var ErrMonitorGone = errors.New("monitor exited without writing an exit file")

// WaitExit blocks until the exit file exists and returns it, or until ctx
// ends. With monitorPID > 0 it wakes as soon as the monitor exits (a pidfd:
// the monitor exits right after writing the file) and returns an error
// wrapping ErrMonitorGone if the monitor died without writing it. It also
// checks the file every pollInterval, so a stale or reused pid (after a
// berthd restart) only costs latency, never a wrong answer. It uses no
// inotify instance, of which a node has only 128 by default.
func WaitExit(ctx context.Context, exitFile string, monitorPID int) (*Exit, error) {
	return waitExit(ctx, exitFile, monitorPID)
}

// ReopenLog asks the monitor to reopen its log file and returns once it has
// (kubelet renames the file, then calls ReopenContainerLog: every line
// written before the reply is in the old file, every later one in the new).
func ReopenLog(ctx context.Context, controlSocket string) error {
	_, err := control(ctx, controlSocket, ctlReopenLog)
	if err != nil {
		return fmt.Errorf("reopen container log: %w", err)
	}
	return nil
}

// Ping checks that the monitor behind controlSocket is alive and returns
// its pid (adoption after a berthd restart).
func Ping(ctx context.Context, controlSocket string) (int, error) {
	reply, err := control(ctx, controlSocket, ctlPing)
	if err != nil {
		return 0, fmt.Errorf("ping monitor: %w", err)
	}
	var pid int
	if _, err := fmt.Sscanf(reply, "%d", &pid); err != nil {
		return 0, fmt.Errorf("ping monitor: bad reply %q", reply)
	}
	return pid, nil
}

// Size is a terminal size in characters.
type Size struct {
	Width, Height uint16
}

// Attach connects to the container's stdio through the monitor's attach
// socket. It copies stdin (nil for none) to the container, the container's
// stdout and stderr to stdout and stderr (nil discards; a tty's output is
// all stdout), and applies each size from resize (nil for none; only a tty
// container uses them). Sizes already queued in resize when Attach is
// called are applied before any input. When stdin reaches EOF the monitor is told, and
// closes the container's stdin if the container is StdinOnce.
//
// Attach returns nil when the container's output ends (it exited), or ctx's
// error. It cannot interrupt a blocked stdin.Read: a stdin copy still
// waiting then stops at its next read.
func Attach(ctx context.Context, attachSocket string, stdin io.Reader, stdout, stderr io.Writer, resize <-chan Size) error {
	return attach(ctx, attachSocket, stdin, stdout, stderr, resize)
}
