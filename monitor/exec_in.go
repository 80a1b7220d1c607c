package monitor

// Execs run by the container's own monitor (ExecSync: kubelet's exec
// probes). berthd sends the exec on the control socket instead of
// spawning a monitor per exec: a probe then costs the node the runtime's
// exec (and what the runtime forks) and nothing else.
//
// The protocol, on one control connection:
//
//	berthd -> monitor  "exec\n" + Config.Encode() of the exec session
//	berthd -> monitor  "kill" (or a hang-up): kill the command now
//	monitor -> berthd  "exit CODE"              the command ended
//	                   "runtime-error MSG"      the runtime did not start it (MSG quoted)
//	                   "error: MSG"             the monitor could not run it
//
// Only the exec fields of the config are used (exec_process, pid_file,
// runtime_log_path, log_path, log_dir, max_line_size, max_output); the
// container and its runtime are the monitor's own. A monitor older than
// this code answers "error: unknown request ..." and berthd falls back
// to a monitor per exec (see docs/DESIGN.md, the control protocol).

import (
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Exec replies and the kill request.
const (
	CtlExec           = "exec"
	CtlExecKill       = "kill"
	ExecReplyExit     = "exit"
	ExecReplyRuntime  = "runtime-error"
	CtlExecMaxRequest = 8 * 1024
)

// execRun is one exec in flight: the command to kill when asked, once
// the runtime has started it and its pid is known.
type execRun struct {
	pid    atomic.Int64
	killed atomic.Bool
}

// kill SIGKILLs the run's current process if the monitor still waits for
// it (the reaper's lock makes the pid certain; see reaper.signal).
func (m *supervisor) killRun(x *execRun) {
	x.killed.Store(true)
	if pid := int(x.pid.Load()); pid > 0 {
		m.r.signal(pid, syscall.SIGKILL)
	}
}

// execSet is the execs in flight, which the monitor ends before it exits.
type execSet struct {
	mu      sync.Mutex
	runs    map[*execRun]struct{}
	closing bool
	wg      sync.WaitGroup
}

// begin registers x; false once the container has exited.
func (s *execSet) begin(x *execRun) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	if s.runs == nil {
		s.runs = map[*execRun]struct{}{}
	}
	s.runs[x] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *execSet) end(x *execRun) {
	s.mu.Lock()
	delete(s.runs, x)
	s.mu.Unlock()
	s.wg.Done()
}

// closeExecs kills the execs still running once the container's init
// exited (its PID namespace, if shared, may keep them alive) and waits a
// while for their replies, so berthd gets exit codes, not a hang-up.
func (m *supervisor) closeExecs(wait time.Duration) {
	s := &m.execs
	s.mu.Lock()
	s.closing = true
	for x := range s.runs {
		m.killRun(x)
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	waitOrTimeout(done, wait)
}

// execIn runs the exec req describes in the container and returns the
// reply. It watches conn for a kill request or a hang-up meanwhile.
func (m *supervisor) execIn(conn *os.File, req []byte) string {
	cfg, err := DecodeConfig(req)
	if err != nil {
		return "error: " + err.Error()
	}
	if cfg.ID != m.cfg.ID {
		return "error: exec for container " + strconv.Quote(cfg.ID) + " sent to the monitor of " + strconv.Quote(m.cfg.ID)
	}
	if cfg.ExecProcess == "" || cfg.Terminal || cfg.Stdin || cfg.AttachFD != 0 || cfg.AttachSocket != "" || cfg.ControlSocket != "" {
		return "error: exec: only exec_process with logged output, no terminal, stdin or sockets"
	}
	cfg.Bundle, cfg.RuntimePath, cfg.RuntimeRoot = m.cfg.Bundle, m.cfg.RuntimePath, m.cfg.RuntimeRoot
	cfg.RuntimeArgs, cfg.CreateArgs = m.cfg.RuntimeArgs, nil
	if err := cfg.Validate(); err != nil {
		return "error: " + err.Error()
	}
	x := &execRun{}
	if !m.execs.begin(x) {
		return "error: exec: the container has exited"
	}
	defer m.execs.end(x)
	go func() {
		// Any packet, a hang-up or the close below ends the wait; the
		// kill then reaches nothing once the command was reaped.
		buf := make([]byte, 16)
		if _, err := conn.Read(buf); err != nil && m.execOver(x) {
			return
		}
		m.killRun(x)
	}()
	code, runtimeErr, err := m.runExec(&cfg, x)
	m.finishExec(x)
	switch {
	case err != nil:
		m.diag.Print("exec: ", err.Error())
		return "error: " + err.Error()
	case runtimeErr != "":
		return ExecReplyRuntime + " " + strconv.Quote(runtimeErr)
	}
	return ExecReplyExit + " " + strconv.Itoa(int(code))
}

// finishExec marks x over: the watcher's read failing from now on (the
// connection closed by the reply's sender) is no kill request.
func (m *supervisor) finishExec(x *execRun) { x.pid.Store(-1) }

func (m *supervisor) execOver(x *execRun) bool { return x.pid.Load() < 0 }

// runExec runs `<runtime> exec --detach` with the exec's output piped to
// its log, waits for the command and drains its output (at most
// drainTimeout, as for the container: a background process may hold the
// pipes forever). It returns the exit code, or the runtime's failure.
func (m *supervisor) runExec(cfg *Config, x *execRun) (code int32, runtimeErr string, err error) {
	logw, err := OpenLogWriter(cfg.LogDir, cfg.LogPath, cfg.MaxLineSize)
	if err != nil {
		return 0, "", err
	}
	defer logw.Close()
	devnull, err := os.OpenFile("/dev/null", os.O_RDWR, 0)
	if err != nil {
		return 0, "", wrap(err, "open /dev/null")
	}
	defer devnull.Close()
	var g pumpGroup
	files := []uintptr{devnull.Fd(), 0, 0}
	var childEnds []*os.File
	defer func() {
		for _, f := range childEnds {
			f.Close()
		}
	}()
	for i, name := range []string{StreamStdout, StreamStderr} {
		r, w, err := os.Pipe()
		if err != nil {
			m.stopGroup(&g, 0, "an exec")
			return 0, "", wrap(err, name, " pipe")
		}
		childEnds = append(childEnds, w)
		files[1+i] = w.Fd()
		s := logw.Stream(name)
		if cfg.MaxOutput > 0 {
			s.Limit(cfg.MaxOutput)
		}
		m.pumpIn(&g, r, s, 0, false)
	}

	m.r.hold()
	held := true
	defer func() {
		if held {
			m.r.release()
		}
	}()
	started := time.Now()
	argv := append([]string{cfg.RuntimePath}, createArgs(cfg, "")...)
	_, rtDone, err := m.r.forkExec(cfg.RuntimePath, argv, &syscall.ProcAttr{
		Dir:   "/",
		Env:   RuntimeEnv(os.Environ()),
		Files: files,
	})
	for _, f := range childEnds {
		f.Close()
	}
	childEnds = nil
	if err != nil {
		m.stopGroup(&g, 0, "an exec")
		return 0, "", wrap(err, "run ", cfg.RuntimePath)
	}
	// A kill waits for the runtime (as an exec session's monitor does):
	// killing it halfway could leave the command started and unknown.
	rec := <-rtDone
	if rec.status.ExitStatus() != 0 || rec.status.Signaled() {
		m.stopGroup(&g, drainTimeout, "an exec's runtime")
		return 0, "runtime exec: " + statusString(rec.status), nil
	}
	pid, err := readPidFile(cfg.PidFile)
	if err != nil {
		m.stopGroup(&g, drainTimeout, "an exec")
		return 0, "", err
	}
	done := m.r.waitSince(pid, started)
	m.r.release()
	held = false
	x.pid.Store(int64(pid))
	if x.killed.Load() {
		m.r.signal(pid, syscall.SIGKILL)
	}
	rec = <-done
	m.stopGroup(&g, drainTimeout, "an exec")
	return exitFromStatus(pid, rec.status, rec.at, false).ExitCode, "", nil
}
