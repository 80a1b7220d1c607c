package monitor

// An exec session streamed to one client (kubectl exec, crictl exec -it):
// berthd makes a connected socket pair, keeps one end and passes the other
// to the monitor (Config.AttachFD). The client is attached before the
// command starts, so it sees the output from the first byte, and when it
// hangs up (berthd's caller went away, or berthd died) the command is
// killed, so an abandoned session leaves nothing running.

import (
	"syscall"
)

// bindAttachClient serves the connection at cfg.AttachFD as the session's
// only client.
func (m *supervisor) bindAttachClient() error {
	c, err := connFile(m.cfg.AttachFD, "attach")
	if err != nil {
		return err
	}
	m.attach.Store(newBoundAttachServer(c, m.onClientGone, m.diag))
	return nil
}

// onClientGone kills the command when its client left first. If the pid
// is not known yet, create kills it as soon as it is.
func (m *supervisor) onClientGone() {
	m.clientGone.Store(true)
	m.killExec()
}

// killExec sends SIGKILL to the exec'd command if it has not been reaped:
// the reaper holds its lock across the check and the kill, so the pid is
// still this monitor's unreaped child and cannot name another process.
func (m *supervisor) killExec() {
	if pid := int(m.execPid.Load()); pid > 0 {
		m.r.signalIfWaiting(pid, syscall.SIGKILL)
	}
}
