package monitor

import (
	"errors"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// drainTimeout bounds how long the monitor still reads output after the
	// init exited: processes outside the container's pid namespace (host or
	// pod-shared pid namespace) may hold its pipes open forever.
	drainTimeout = 2 * time.Second
	// consoleTimeout bounds the wait for the pty after create returned (the
	// runtime sent it before exiting, or never will).
	consoleTimeout = 5 * time.Second
	// captureMax bounds the runtime's stderr kept for an error message.
	captureMax = 4096
	// boundFlushTimeout bounds how long an exec session's own client may
	// take to receive the output left when the command exited.
	boundFlushTimeout = 30 * time.Second
)

// supervisor is one berth-monitor process's state.
type supervisor struct {
	cfg  Config
	diag *Diag
	r    *reaper
	logw *LogWriter
	// runtimeTime is how long the runtime's create (or exec) ran.
	runtimeTime time.Duration

	pumps   pumpGroup  // the container's outputs
	readMu  sync.Mutex // held by the pump that reads into readBuf
	readBuf []byte
	stdin   *os.File // container stdin (pipe write end, or the pty master)
	pty     *os.File
	attach  atomic.Pointer[attachServer]
	control *controlServer
	execs   execSet // execs run in the container by the control socket

	creating  atomic.Bool
	captureMu sync.Mutex
	capture   []byte // runtime stderr while creating

	pid      int
	initDone <-chan reaped
	// execPid is the exec session's process once known; clientGone
	// says its bound attach client hung up (see Config.AttachFD).
	execPid    atomic.Int64
	clientGone atomic.Bool
	oom        *oomCounter
	oomBefore  uint64
}

// Run is berth-monitor's main work: it makes the runtime create the
// container cfg describes, reports the pid or the error on sync (one
// SyncReport line, then closed), supervises the container until its init
// exits, writes the exit file and returns the exit code for the process.
// The caller runs it as a fresh process: it makes that process a child
// subreaper and reaps all its children.
func Run(cfg Config, syncOut io.WriteCloser, diag *Diag) int {
	m := &supervisor{cfg: cfg, diag: diag}
	var term chan os.Signal
	if cfg.ExecProcess != "" {
		// berthd ends an exec session by signalling its monitor (the
		// one process it holds by pidfd); see killExecOnTerm.
		term = make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
	}
	if err := m.create(); err != nil {
		diag.Print("create: ", err.Error())
		var rf *runtimeFailure
		report(syncOut, SyncReport{Error: err.Error(), RuntimeFailed: errors.As(err, &rf)}, diag)
		return 1
	}
	report(syncOut, SyncReport{Pid: m.pid, RuntimeNS: int64(m.runtimeTime)}, diag)
	if term != nil {
		go m.killExecOnTerm(term)
	}
	m.supervise()
	return 0
}

func report(sync io.WriteCloser, r SyncReport, diag *Diag) {
	if sync == nil {
		return
	}
	if _, err := sync.Write(r.encode()); err != nil {
		diag.Print("report to berthd: ", err.Error())
	}
	sync.Close()
}

// runtimeFailure is a create the runtime itself failed; msg is what the
// monitor saw of it (see runtimeError).
type runtimeFailure struct{ msg string }

func (e *runtimeFailure) Error() string { return e.msg }

// create runs `<runtime> create` (or exec) and prepares supervision. On
// error nothing of the container is left.
func (m *supervisor) create() (err error) {
	cfg := &m.cfg
	if err := cfg.Validate(); err != nil {
		return err
	}
	// Fail now rather than lose the exit status at the end.
	// (unix.Stat, not os.Stat: os.FileInfo's time.Time would link time's
	// formatting and zone loading.)
	var st unix.Stat_t
	if err := unix.Stat(filepath.Dir(cfg.ExitFile), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return errors.New("exit file directory " + filepath.Dir(cfg.ExitFile) + ": not a directory (" + errString(err) + ")")
	}
	if m.r, err = startReaper(); err != nil {
		return err
	}
	if m.logw, err = OpenLogWriter(cfg.LogDir, cfg.LogPath, cfg.MaxLineSize); err != nil {
		return err
	}
	if cfg.AttachFD > 0 {
		// Before any pump starts, so the client misses no output.
		if err := m.bindAttachClient(); err != nil {
			return err
		}
	}
	devnull, err := os.OpenFile("/dev/null", os.O_RDWR, 0)
	if err != nil {
		return wrap(err, "open /dev/null")
	}
	defer devnull.Close()

	// Stdio for the runtime. Without a tty the container inherits it
	// (runc passes its stdio through), so the pipes are the container's.
	var childEnds []*os.File
	defer func() {
		for _, f := range childEnds {
			f.Close()
		}
	}()
	files := []uintptr{devnull.Fd(), devnull.Fd(), devnull.Fd()}
	var cs *consoleSocket
	var consoleCh chan consoleResult
	if cfg.Terminal {
		if cs, err = newConsoleSocket(cfg); err != nil {
			return err
		}
		defer cs.close()
		consoleCh = make(chan consoleResult, 1)
		go func() {
			f, err := cs.receive()
			consoleCh <- consoleResult{f, err}
		}()
		// The runtime's own stderr is not the container's: keep it for
		// errors only.
		r, w, err := os.Pipe()
		if err != nil {
			return wrap(err, "runtime stderr pipe")
		}
		childEnds = append(childEnds, w)
		files[2] = w.Fd()
		m.startPump(r, nil, 0, true)
	} else {
		if cfg.Stdin {
			r, w, err := os.Pipe()
			if err != nil {
				return wrap(err, "stdin pipe")
			}
			childEnds = append(childEnds, r)
			files[0] = r.Fd()
			m.stdin = w
		}
		for i, name := range []string{StreamStdout, StreamStderr} {
			r, w, err := os.Pipe()
			if err != nil {
				return wrap(err, name, " pipe")
			}
			childEnds = append(childEnds, w)
			files[1+i] = w.Fd()
			m.startPump(r, m.stream(name), AttachStdout+byte(i), name == StreamStderr)
		}
	}
	defer func() {
		if err != nil {
			m.stopPumps(drainTimeout)
			m.logw.Close()
			if m.stdin != nil {
				m.stdin.Close()
			}
		}
	}()

	m.creating.Store(true)
	rtStart := time.Now()
	argv := append([]string{cfg.RuntimePath}, createArgs(cfg, consoleSocketPath(cs))...)
	rtPid, rtDone, err := m.r.forkExec(cfg.RuntimePath, argv, &syscall.ProcAttr{
		Dir:   "/",
		Env:   runtimeEnv(cfg, os.Environ()),
		Files: files,
	})
	if err != nil {
		return wrap(err, "run ", cfg.RuntimePath)
	}
	for _, f := range childEnds {
		f.Close()
	}
	childEnds = nil
	rec := <-rtDone
	m.runtimeTime = time.Since(rtStart)
	m.creating.Store(false)
	if rec.status.ExitStatus() != 0 || rec.status.Signaled() {
		// Let the pumps take what the runtime wrote before it exited.
		m.stopPumps(drainTimeout)
		return &runtimeFailure{msg: m.runtimeError(rtPid, rec.status)}
	}

	// From here the container exists: any failure must remove it.
	defer func() {
		if err != nil {
			m.removeContainer()
		}
	}()
	if m.pid, err = readPidFile(cfg.PidFile); err != nil {
		return err
	}
	m.initDone = m.r.wait(m.pid)
	if cfg.AttachFD > 0 {
		m.execPid.Store(int64(m.pid))
		if m.clientGone.Load() {
			m.killExec()
		}
	}
	if cfg.Terminal {
		cs.setDeadline(time.Now().Add(consoleTimeout))
		res := <-consoleCh
		if res.err != nil {
			return wrap(res.err, "receive the container's pty")
		}
		m.pty = res.f
		if cfg.Stdin {
			m.stdin = m.pty
		}
		m.startPump(m.pty, m.stream(StreamStdout), AttachStdout, false)
	}
	m.watchOOM()
	if a := m.attach.Load(); a != nil {
		a.setIO(m.stdin, m.pty, cfg.StdinOnce)
	} else if cfg.AttachSocket != "" {
		a, err := newAttachServer(cfg.AttachSocket, m.stdin, m.pty, cfg.StdinOnce, m.diag)
		if err != nil {
			return err
		}
		m.attach.Store(a)
	}
	if cfg.ControlSocket != "" {
		if m.control, err = newControlServer(cfg.ControlSocket, m.logw, m.diag, m.execIn, m.signalInit); err != nil {
			if a := m.attach.Load(); a != nil {
				a.close(0)
			}
			return err
		}
	}
	return nil
}

// killExecOnTerm SIGKILLs the exec session's command when the monitor gets
// SIGTERM (ExecSync's timeout). The monitor is the command's parent and
// reaps it, so unlike berthd it knows the pid is still the command's.
func (m *supervisor) killExecOnTerm(term <-chan os.Signal) {
	<-term
	m.diag.Print("SIGTERM: killing exec process ", strconv.Itoa(m.pid))
	m.r.signal(m.pid, syscall.SIGKILL)
}

// signalInit sends sig to the container's init (StopContainer's stop
// signal and kill). The monitor is its parent and the reaper's lock is
// held across the check and the kill, so the pid is still the init's: no
// runtime exec is needed to reach it safely. False once it was reaped.
func (m *supervisor) signalInit(sig syscall.Signal) bool {
	return m.r.signal(m.pid, sig)
}

// stream is the log stream for one output, limited to cfg.MaxOutput.
func (m *supervisor) stream(name string) *LogStream {
	s := m.logw.Stream(name)
	if m.cfg.MaxOutput > 0 {
		s.Limit(m.cfg.MaxOutput)
	}
	return s
}

type consoleResult struct {
	f   *os.File
	err error
}

func consoleSocketPath(cs *consoleSocket) string {
	if cs == nil {
		return ""
	}
	return cs.path
}

// removeContainer undoes a create whose supervision could not be set up.
func (m *supervisor) removeContainer() {
	if m.cfg.ExecProcess != "" {
		if m.pid > 0 {
			_ = syscall.Kill(m.pid, syscall.SIGKILL)
		}
		return
	}
	argv := append([]string{m.cfg.RuntimePath}, append(GlobalArgs(&m.cfg), "delete", "--force", m.cfg.ID)...)
	_, done, err := m.r.forkExec(m.cfg.RuntimePath, argv, &syscall.ProcAttr{Dir: "/", Env: RuntimeEnv(os.Environ())})
	if err != nil {
		m.diag.Print("delete after failed setup: ", err.Error())
		return
	}
	if rec := <-done; rec.status.ExitStatus() != 0 {
		m.diag.Print("delete after failed setup: ", statusString(rec.status))
	}
}

// watchOOM opens the container's OOM counter and reads its start value.
// Without one (no memory controller, old kernel) OOM kills go unreported.
func (m *supervisor) watchOOM() {
	dir := m.cfg.CgroupPath
	if dir == "" {
		var err error
		if dir, err = memoryCgroupDir(m.pid); err != nil {
			m.diag.Print("oom detection off: ", err.Error())
			return
		}
	}
	c, err := openOOMCounter(dir)
	if err != nil {
		m.diag.Print("oom detection off: ", err.Error())
		return
	}
	n, err := c.kills()
	if err != nil {
		c.close()
		m.diag.Print("oom detection off: ", err.Error())
		return
	}
	m.oom, m.oomBefore = c, n
	c.watch()
}

// supervise waits for the init to exit, finishes the log, hangs up attach
// clients and writes the exit file.
func (m *supervisor) supervise() {
	rec := <-m.initDone
	oom := false
	if m.oom != nil {
		sigkill := rec.status.Signaled() && rec.status.Signal() == syscall.SIGKILL
		killed, err := m.oom.killed(m.oomBefore, sigkill)
		if err != nil {
			m.diag.Print("read oom counter: ", err.Error())
		}
		oom = killed
		m.oom.close()
	}
	if m.stdin != nil && m.stdin != m.pty {
		m.stdin.Close()
	}
	m.stopPumps(drainTimeout)
	if m.control != nil {
		m.control.close()
	}
	// Execs still running would outlive their container in a shared PID
	// namespace: they are killed and answered before the exit file.
	m.closeExecs(drainTimeout + time.Second)
	if err := m.logw.Close(); err != nil {
		m.diag.Print("close log: ", err.Error())
	}
	if a := m.attach.Load(); a != nil {
		wait := time.Second
		if m.cfg.AttachFD > 0 {
			wait = boundFlushTimeout
		}
		a.close(wait)
	}
	e := exitFromStatus(m.pid, rec.status, rec.at, oom)
	if err := WriteExitFile(m.cfg.ExitFile, e); err != nil {
		m.diag.Print(err.Error())
	}
}

// statusString describes a wait status as the shell would.
func statusString(ws syscall.WaitStatus) string {
	if ws.Signaled() {
		return "killed by signal " + strconv.Itoa(int(ws.Signal()))
	}
	return "exit status " + strconv.Itoa(ws.ExitStatus())
}
