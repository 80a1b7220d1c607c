package runner

import (
	"os"
	"os/signal"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/system"
	"github.com/opencontainers/runc/libcontainer/utils"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// signalRelay is used only by attached `run` and `exec`: it forwards the
// signals we receive to the process, resizes its terminal, and reaps
// children until the process exits. Detached commands (create, exec -d), the
// ones a CRI monitor uses, never install it: signal.Notify for every signal
// is measurable work that runc does on every create.
type signalRelay struct {
	signals chan os.Signal
}

func newSignalRelay(subreaper bool) *signalRelay {
	if subreaper {
		if err := system.SetSubreaper(1); err != nil {
			logrus.Warn(err)
		}
	}
	s := make(chan os.Signal, 2048)
	signal.Notify(s)
	return &signalRelay{signals: s}
}

// forward returns the process's exit status.
func (h *signalRelay) forward(p *libcontainer.Process, t *stdio) (int, error) {
	pid1, err := p.Pid()
	if err != nil {
		return -1, err
	}
	_ = t.resize()
	for s := range h.signals {
		switch s {
		case unix.SIGWINCH:
			_ = t.resize()
		case unix.SIGCHLD:
			for {
				var ws unix.WaitStatus
				pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
				if err != nil || pid <= 0 {
					break
				}
				if pid == pid1 {
					_, _ = p.Wait()
					return utils.ExitStatus(ws), nil
				}
			}
		case unix.SIGURG:
			// the Go runtime's preemption signal, not for the container
		default:
			if err := p.Signal(s); err != nil {
				logrus.Error(err)
			}
		}
	}
	return -1, nil
}
