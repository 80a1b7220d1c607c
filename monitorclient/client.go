// Package monitorclient is berthd's side of berth-monitor, the
// per-container supervisor: what oci (and streaming) use to spawn a
// monitor, hand it its config, wait for its report and the container's
// exit, attach, exec and signal through it.
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
//	st, err := monitorclient.Start(ctx, monitorPath, cfg) // runtime create; st.ContainerPID
//	// berthd runs `<runtime> start ID` itself.
//	exit, err := monitorclient.WaitExit(ctx, cfg.ExitFile, st.MonitorPID)
//	// or, after a restart: monitorclient.ReadExitFile(cfg.ExitFile)
//	monitorclient.ReopenLog(ctx, cfg.ControlSocket) // kubelet's ReopenContainerLog
//	monitorclient.Attach(ctx, cfg.AttachSocket, stdin, stdout, stderr, resize)
//
// A container that is created but never started, then deleted
// (`<runtime> delete --force`), is killed by the runtime; the monitor sees its
// init die, writes the exit file (signal 9, code 137) and exits like any other.
//
// The monitor process's own code is package monitor, which links
// only the standard library's small packages and golang.org/x/sys, so
// every monitor stays small in memory; this package, berthd's side, may use
// more (encoding/json, net) but must not import the daemon's packages
// (errdefs, config, logrus, grpc). Callers mark errors with kinds.
package monitorclient

import (
	"bufio"
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

	"golang.org/x/sys/unix"

	"github.com/berth-cri/berth/monitor"
)

// Config is everything the monitor needs for one container: see
// monitor.Config.
type Config = monitor.Config

// DefaultMaxLineSize is the longest log line the monitor writes before it
// splits a line into partial ("P") records.
const DefaultMaxLineSize = monitor.DefaultMaxLineSize

// SyncFDEnv names the environment variable that tells berth-monitor which
// fd to report on.
const SyncFDEnv = monitor.SyncFDEnv

// Exit is the exit file's content: how the container's init ended.
type Exit = monitor.Exit

// Started is what Start reports once the runtime created the container.
type Started struct {
	// MonitorPID is the monitor's pid (for WaitExit and for adoption after
	// a berthd restart).
	MonitorPID int
	// ContainerPID is the container's init pid as the runtime wrote it.
	ContainerPID int
	// RuntimeTime is how long the runtime's create (or exec) took,
	// measured by the monitor.
	RuntimeTime time.Duration

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
// behind, and returns ctx's error; for an exec session it signals the
// monitor instead, which kills the command once the runtime has started
// it, and exits.
func Start(ctx context.Context, monitorBinary string, cfg Config) (*Started, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sp, err := spawn(monitorBinary, cfg.ID, cfg.MonitorLogPath, nil)
	if err != nil {
		return nil, err
	}
	return sp.Start(ctx, cfg)
}

// Spawned is a monitor started ahead of its config: it waits for it on
// stdin. berthd spawns a container's monitor before it makes the root
// filesystem, so the monitor's exec and start-up (milliseconds of a busy
// node's CPU) overlap the image store's work instead of following it.
// Exactly one of Start and Discard ends it.
type Spawned struct {
	cmd     *exec.Cmd
	id      string
	logPath string
	conf    *os.File // the monitor's stdin
	syncR   *os.File
	waited  chan error
	used    bool
}

// Spawn starts a monitor for container id that waits for its config.
// logPath (in an existing directory) or /dev/null takes its stderr.
func Spawn(monitorBinary, id, logPath string) (*Spawned, error) {
	return spawn(monitorBinary, id, logPath, nil)
}

func spawn(monitorBinary, id, logPath string, attachEnd *os.File) (_ *Spawned, err error) {
	confR, confW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("monitor config pipe: %w", err)
	}
	defer confR.Close()
	syncR, syncW, err := os.Pipe()
	if err != nil {
		confW.Close()
		return nil, fmt.Errorf("monitor sync pipe: %w", err)
	}
	defer syncW.Close()
	defer func() {
		if err != nil {
			confW.Close()
			syncR.Close()
		}
	}()

	cmd := exec.Command(monitorBinary, "--id", id)
	cmd.Dir = "/" // never pin a mount by the monitor's cwd
	cmd.Env = monitorEnv(os.Environ())
	cmd.Stdin = confR
	cmd.ExtraFiles = []*os.File{syncW}
	if attachEnd != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, attachEnd) // fd monitor.AttachFD
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if logPath != "" {
		f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
		if err != nil {
			return nil, fmt.Errorf("open monitor log: %w", err)
		}
		defer f.Close()
		cmd.Stderr = f
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start monitor %s: %w", monitorBinary, err)
	}
	sp := &Spawned{cmd: cmd, id: id, logPath: logPath, conf: confW, syncR: syncR, waited: make(chan error, 1)}
	go func() { sp.waited <- reap(cmd) }()
	return sp, nil
}

// Discard ends a monitor that was never given its config: its stdin
// closes, it exits, and it is reaped. After Start it does nothing.
func (sp *Spawned) Discard() {
	if sp == nil || sp.used {
		return
	}
	sp.used = true
	sp.conf.Close()
	sp.syncR.Close()
	select {
	case <-sp.waited:
	case <-time.After(10 * time.Second):
		// Stuck before reading its stdin: its group goes.
		_ = syscall.Kill(-sp.cmd.Process.Pid, syscall.SIGKILL)
		<-sp.waited
	}
}

// Start hands the spawned monitor its config and waits until it reports
// that the runtime created the container (its pid), or why it failed.
// cfg must name the container and monitor log Spawn was given.
func (sp *Spawned) Start(ctx context.Context, cfg Config) (*Started, error) {
	if sp.used {
		return nil, fmt.Errorf("container %s: monitor already used", cfg.ID)
	}
	sp.used = true
	defer sp.syncR.Close()
	cmd, waited := sp.cmd, sp.waited
	kill := func() {
		// The whole group: the monitor and the runtime it forked.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-waited
	}
	if err := cfg.Validate(); err != nil {
		sp.conf.Close()
		kill()
		return nil, err
	}
	if cfg.ID != sp.id || cfg.MonitorLogPath != sp.logPath {
		sp.conf.Close()
		kill()
		return nil, fmt.Errorf("container %s: monitor spawned for %s (log %q), config says log %q", cfg.ID, sp.id, sp.logPath, cfg.MonitorLogPath)
	}
	// Where the runtime's log ends now: its last error after this is the
	// account of a failed create (the monitor does not parse its JSON).
	rtLog := monitor.RuntimeLogPath(&cfg)
	var rtLogOffset int64
	if fi, err := os.Stat(rtLog); err == nil {
		rtLogOffset = fi.Size()
	}
	// Far below the pipe's buffer: never blocks on a live monitor.
	_, err := sp.conf.Write(cfg.Encode())
	sp.conf.Close()
	if err != nil {
		kill()
		return nil, fmt.Errorf("container %s: send the monitor its config: %w", cfg.ID, err)
	}

	type result struct {
		msg monitor.SyncReport
		err error
	}
	got := make(chan result, 1)
	go func() {
		line, err := bufio.NewReaderSize(io.LimitReader(sp.syncR, 1<<20), 4096).ReadString('\n')
		if err != nil {
			got <- result{err: err}
			return
		}
		m, err := monitor.ParseSyncReport(line)
		got <- result{m, err}
	}()

	select {
	case r := <-got:
		switch {
		case r.err == nil && r.msg.Error != "":
			<-waited
			msg := r.msg.Error
			if r.msg.RuntimeFailed {
				if logged := lastLoggedError(rtLog, rtLogOffset); logged != "" {
					msg = logged
				}
			}
			return nil, fmt.Errorf("container %s: runtime %s: %w", cfg.ID, filepath.Base(cfg.RuntimePath), &RuntimeError{Message: msg})
		case r.err == nil && r.msg.Pid > 0:
			return &Started{MonitorPID: cmd.Process.Pid, ContainerPID: r.msg.Pid, RuntimeTime: time.Duration(r.msg.RuntimeNS), proc: cmd.Process}, nil
		default:
			// The monitor died (or wrote garbage) before reporting.
			kill()
			cleanupRuntime(cfg)
			tail := logTail(cfg.MonitorLogPath)
			if cfg.RestoreImagePath != "" && strings.Contains(tail, monitor.UnknownKeyError) {
				// A berth-monitor older than berthd: it refused the
				// restore's keys before running anything.
				return nil, fmt.Errorf("container %s: %w: %s refused the restore config%s", cfg.ID, ErrMonitorTooOld, monitorBinaryOf(cmd), tail)
			}
			return nil, fmt.Errorf("container %s: monitor exited before reporting (%v)%s", cfg.ID, r.err, tail)
		}
	case <-ctx.Done():
		if cfg.ExecProcess != "" {
			// The runtime may have started the command already, and
			// killing the group would leave it running, orphaned. The
			// monitor, told by SIGTERM (see killExecOnTerm), kills it
			// as soon as it knows its pid, then exits (before it set
			// up its handler, SIGTERM ends it before it ran the
			// runtime). Waiting for that exit keeps the monitor's last
			// writes (exit file, log) before the caller's cleanup.
			_ = cmd.Process.Signal(syscall.SIGTERM)
			t := time.NewTimer(execCancelWait)
			defer t.Stop()
			select {
			case <-waited:
			case <-t.C:
				kill()
			}
			return nil, fmt.Errorf("container %s: waiting for exec monitor: %w", cfg.ID, ctx.Err())
		}
		kill()
		cleanupRuntime(cfg)
		return nil, fmt.Errorf("container %s: waiting for monitor: %w", cfg.ID, ctx.Err())
	}
}

// ErrMonitorTooOld is a monitor binary that does not know a mode berthd
// asked of it (a restore): it was built before berthd. Install the
// berth-monitor built with this berthd.
var ErrMonitorTooOld = errors.New("berth-monitor is older than berthd and cannot restore a container (install the berth-monitor built with this berthd)")

func monitorBinaryOf(cmd *exec.Cmd) string { return cmd.Path }

// execCancelWait bounds the wait for a cancelled exec session's monitor
// to kill the command and exit (it drains output for at most two
// seconds).
const execCancelWait = 30 * time.Second

// monitorEnv is the monitor's environment: the caller's, the sync fd's
// name, and GOMAXPROCS=1. The monitor needs one P; set before its runtime
// starts (not by runtime.GOMAXPROCS in main) it also keeps the runtime
// from starting a second P's worth of threads and caches during init,
// about 160 KiB of private memory per monitor. The caller's own
// GOMAXPROCS, if any, travels in monitor.CallerGOMAXPROCSEnv so the
// monitor can hand it to the OCI runtime unchanged.
func monitorEnv(environ []string) []string {
	env := make([]string, 0, len(environ)+3)
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "GOMAXPROCS="); ok {
			env = append(env, monitor.CallerGOMAXPROCSEnv+"="+v)
			continue
		}
		if !strings.HasPrefix(kv, monitor.CallerGOMAXPROCSEnv+"=") {
			env = append(env, kv)
		}
	}
	return append(env, fmt.Sprintf("%s=%d", SyncFDEnv, monitor.SyncFD), "GOMAXPROCS=1")
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
	args := append(monitor.GlobalArgs(&cfg), "delete", "--force", cfg.ID)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = exec.CommandContext(ctx, cfg.RuntimePath, args...).Run()
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
// wrapping ErrMonitorGone if the monitor died without writing it. Without
// a pidfd it polls the file every pollInterval. It uses no inotify
// instance, of which a node has only 128 by default.
//
// same, if not nil, says whether monitorPID still names the monitor (its
// start time, say); WaitExit asks it once it holds the monitor's pidfd,
// and when it says yes needs nothing but the pidfd to learn the exit.
// Without it the exit file is also read every second, in case the pid
// was reused.
func WaitExit(ctx context.Context, exitFile string, monitorPID int, same func() bool) (*Exit, error) {
	return waitExit(ctx, exitFile, monitorPID, same)
}

// ReopenLog asks the monitor to reopen its log file and returns once it has
// (kubelet renames the file, then calls ReopenContainerLog: every line
// written before the reply is in the old file, every later one in the new).
func ReopenLog(ctx context.Context, controlSocket string) error {
	_, err := control(ctx, controlSocket, monitor.CtlReopenLog)
	if err != nil {
		return fmt.Errorf("reopen container log: %w", err)
	}
	return nil
}

// Ping checks that the monitor behind controlSocket is alive and returns
// its pid (adoption after a berthd restart).
func Ping(ctx context.Context, controlSocket string) (int, error) {
	reply, err := control(ctx, controlSocket, monitor.CtlPing)
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
type Size = monitor.Size

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

// reap waits for the monitor, berthd's child, to exit, then reaps it. It
// waits on a pidfd in the runtime's poller first, so a running monitor
// holds no OS thread: cmd.Wait alone blocks one in waitid for as long as
// the container runs, and Go keeps every thread it made.
func reap(cmd *exec.Cmd) error {
	// The pid names our child until we reap it, so the pidfd is its.
	if fd, err := unix.PidfdOpen(cmd.Process.Pid, unix.PIDFD_NONBLOCK); err == nil {
		f := os.NewFile(uintptr(fd), "pidfd")
		if rc, err := f.SyscallConn(); err == nil {
			_ = rc.Read(func(fd uintptr) bool {
				n, _ := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
				return n > 0
			})
		}
		f.Close()
	}
	return cmd.Wait()
}

// lastLoggedError returns the msg of the last error or fatal line written
// to the runtime's JSON log (runc's --log-format json) after offset.
func lastLoggedError(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	var last string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		var l struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && (l.Level == "error" || l.Level == "fatal") && l.Msg != "" {
			last = l.Msg
		}
	}
	return last
}
