package runner

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

type action int

const (
	actCreate  action = iota + 1 // start the init, leave it waiting on the exec fifo
	actRun                       // start a process and run it (run, exec)
	actRestore                   // restore the init's process tree from CRIU images
)

// launch starts one process in a container: the init (create, run) or an
// extra one (exec). It is runc's utils_linux.go runner, minus what a CRI
// runtime does not need on the hot path.
type launch struct {
	container      *libcontainer.Container
	action         action
	init           bool
	detach         bool
	shouldDestroy  bool
	subreaper      bool
	consoleSocket  string
	pidfdSocket    string
	pidFile        string
	preserveFDs    int
	listenFDs      []*os.File
	subCgroupPaths map[string]string
	criuOpts       *libcontainer.CriuOpts // actRestore
}

func (r *launch) run(config *specs.Process) (status int, retErr error) {
	defer func() {
		if retErr != nil {
			r.destroy()
		}
	}()
	detach := r.detach || r.action == actCreate
	if detach && config.Terminal && r.consoleSocket == "" {
		return -1, errors.New("cannot allocate tty if runc will detach without setting console socket")
	}
	if (!detach || !config.Terminal) && r.consoleSocket != "" {
		return -1, errors.New("cannot use console socket if runc will not detach or allocate tty")
	}
	process, err := newProcess(config)
	if err != nil {
		return -1, err
	}
	process.LogLevel = strconv.Itoa(int(logrus.GetLevel()))
	process.Init = r.init
	process.SubCgroupPaths = r.subCgroupPaths
	if len(r.listenFDs) > 0 {
		process.Env = append(process.Env, "LISTEN_FDS="+strconv.Itoa(len(r.listenFDs)), "LISTEN_PID=1")
		process.ExtraFiles = append(process.ExtraFiles, r.listenFDs...)
	}
	base := 3 + len(process.ExtraFiles)
	for fd := base; fd < base+r.preserveFDs; fd++ {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return -1, fmt.Errorf("unable to stat preserved-fd %d (of %d): %w", fd-base, r.preserveFDs, err)
		}
		process.ExtraFiles = append(process.ExtraFiles, os.NewFile(uintptr(fd), "PreserveFD:"+strconv.Itoa(fd)))
	}
	var relay *signalRelay
	if !detach {
		relay = newSignalRelay(r.subreaper)
	}
	t, err := setupIO(process, r.container, config.Terminal, detach, r.consoleSocket)
	if err != nil {
		return -1, err
	}
	defer t.Close()
	if r.pidfdSocket != "" {
		conn, err := dialPidfdSocket(process, r.pidfdSocket)
		if err != nil {
			return -1, err
		}
		defer conn.Close()
	}
	cfg := r.container.Config()
	initOnOneP(&cfg, r.init)
	switch {
	case r.action == actCreate:
		err = r.container.Start(process)
	case r.action == actRestore:
		err = r.container.Restore(process, r.criuOpts)
	default:
		err = r.container.Run(process)
	}
	if err != nil {
		return -1, err
	}
	if err := t.waitConsole(); err != nil {
		r.terminate(process)
		return -1, err
	}
	t.closePostStart()
	if r.pidFile != "" {
		if err := writePidFile(r.pidFile, process); err != nil {
			r.terminate(process)
			return -1, err
		}
	}
	if detach {
		return 0, nil
	}
	status, err = relay.forward(process, t)
	if err != nil {
		r.terminate(process)
		return status, err
	}
	r.destroy()
	return status, nil
}

func (r *launch) destroy() {
	if r.shouldDestroy {
		if err := r.container.Destroy(); err != nil {
			logrus.Warn(err)
		}
	}
}

func (r *launch) terminate(p *libcontainer.Process) {
	_ = p.Signal(unix.SIGKILL)
	_, _ = p.Wait()
}

// writePidFile writes the pid atomically (temporary file, then rename), so
// a reader sees the whole number or no file. Unlike runc it does not write
// synchronously (O_SYNC): a pid means nothing after the machine restarts,
// so there is nothing to make durable, and a synchronous write waits for a
// journal commit (about 1-2 ms per create where the pid file is not on
// tmpfs).
func writePidFile(path string, p *libcontainer.Process) error {
	pid, err := p.Pid()
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path))
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return err
	}
	_, err = f.WriteString(strconv.Itoa(pid))
	f.Close()
	if err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func dialPidfdSocket(p *libcontainer.Process, path string) (net.Conn, error) {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return nil, fmt.Errorf("failed to dial %s: %w", path, err)
	}
	f, err := conn.(*net.UnixConn).File()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("failed to dup socket: %w", err)
	}
	p.PidfdSocket = f
	return conn, nil
}

// listenFDs returns the systemd socket-activation descriptors meant for us.
func listenFDs() []*os.File {
	if os.Getenv("LISTEN_PID") != strconv.Itoa(os.Getpid()) {
		return nil
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n <= 0 {
		return nil
	}
	files := make([]*os.File, 0, n)
	for fd := 3; fd < 3+n; fd++ {
		unix.CloseOnExec(fd)
		files = append(files, os.NewFile(uintptr(fd), "LISTEN_FD_"+strconv.Itoa(fd)))
	}
	return files
}
