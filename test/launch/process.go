package launch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Process is one run of a CRI server a lane started: berthd, a shell
// script that starts it (the README's commands), or the bench's
// containerd. It is the one place that starts such a server, polls it
// until it serves and stops it.
type Process struct {
	cmd  *exec.Cmd
	done chan error
	// group: cmd is a shell whose children are the server; signals go to
	// the whole process group, and a stop waits until the group is empty.
	group bool
}

// StartProcess starts cmd in a process group of its own, its output
// appended to log: a ^C to the lane reaches the lane, which then stops
// the server in order, and a restart keeps the earlier output.
func StartProcess(cmd *exec.Cmd, log string, group bool) (*Process, error) {
	logf, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{cmd: cmd, done: make(chan error, 1), group: group}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

// PID is the process's pid (the shell's, for a group).
func (p *Process) PID() int { return p.cmd.Process.Pid }

// WaitServing polls the socket until the server answers Version, it
// exits, or limit passes. Each try dials anew, so a server that takes
// minutes to come up (a shell that builds first) is seen as soon as it
// serves, not after a grown reconnect backoff.
func (p *Process) WaitServing(socket string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			p.done <- err
			return fmt.Errorf("exited before serving on %s: %v", socket, err)
		default:
		}
		if _, err := os.Stat(socket); err == nil && version(socket) == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not serving on %s after %s", socket, limit)
}

func version(socket string) error {
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = runtimeapi.NewRuntimeServiceClient(conn).Version(ctx, &runtimeapi.VersionRequest{})
	return err
}

// Signal sends sig and waits for the process to exit, SIGKILL after
// wait; it returns the exit error (a process that had to be killed is an
// error whatever its status).
func (p *Process) Signal(sig syscall.Signal, wait time.Duration) error {
	if p.group {
		return p.signalGroup(sig, wait)
	}
	p.cmd.Process.Signal(sig)
	select {
	case err := <-p.done:
		return err
	case <-time.After(wait):
		p.cmd.Process.Kill()
		err := <-p.done
		return fmt.Errorf("did not exit %s after %s (killed): %v", wait, sig, err)
	}
}

// signalGroup signals the whole group (its leader is our child, so the
// group is ours) and waits until no process is left in it.
func (p *Process) signalGroup(sig syscall.Signal, wait time.Duration) error {
	pgid := p.cmd.Process.Pid
	syscall.Kill(-pgid, sig)
	err := <-p.done
	deadline := time.Now().Add(wait)
	for syscall.Kill(-pgid, 0) == nil {
		if time.Now().After(deadline) {
			syscall.Kill(-pgid, syscall.SIGKILL)
			return fmt.Errorf("processes of %s still there %s after %s (killed)", p.cmd, wait, sig)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var exit *exec.ExitError
	if sig == syscall.SIGTERM && errors.As(err, &exit) {
		return nil // the shell itself dies of the signal; what it ran was asked to stop
	}
	return err
}
