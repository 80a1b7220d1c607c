package oci

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-cri/berth/errdefs"
	"github.com/berth-cri/berth/monitorclient"
	"github.com/berth-cri/berth/record"
	"github.com/berth-cri/berth/steptrace"
)

// killWait bounds the wait for a SIGKILLed container's exit when the
// caller's context has no deadline: a process stuck in the kernel (D
// state) must not hang a stop forever.
const killWait = 2 * time.Minute

// watch records the container's exit when its monitor writes the exit
// file. It first frees the runtime's state (and with it the cgroup), so
// whoever waits on Exited finds the runtime done with the container.
func (m *Manager) watch(c *Container) {
	id, monitorPID, monitorStart, rt := c.rec.ID, c.rec.MonitorPID, c.rec.MonitorStart, c.rec.Runtime
	var same func() bool
	if monitorStart != 0 {
		same = func() bool {
			got, err := procStartTime(monitorPID)
			return err == nil && got == monitorStart
		}
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		// No gRPC handler is above this goroutine to recover a panic,
		// which would end berthd (and every other watcher with it).
		defer func() {
			if r := recover(); r != nil {
				err := errdefs.Recovered(r)
				var pe *errdefs.PanicError
				errors.As(err, &pe)
				logFor(id).Errorf("exit watcher: %v\n%s", err, pe.Stack)
			}
		}()
		e, err := monitorclient.WaitExit(m.ctx, c.paths.exit, monitorPID, same)
		if m.ctx.Err() != nil {
			return // berthd is closing; the next one adopts the container
		}
		message := ""
		if err != nil {
			// The monitor died without writing the exit file (killed),
			// or wrote garbage. Nothing supervises the container any
			// more: the delete below kills it, so that its record tells
			// the truth.
			logFor(id).Warnf("lost the container's monitor: %v", err)
			message = "berth-monitor exited without recording the container's exit: " + err.Error()
			e = &monitorclient.Exit{ExitCode: 255, ExitedAt: time.Now()}
		}
		// Under c.ops: a StartContainer still finishing must not meet the
		// delete.
		c.ops.Lock()
		ctx, cancel := context.WithTimeout(m.ctx, time.Minute)
		defer cancel()
		err = rt.Delete(ctx, id)
		if err != nil && m.ctx.Err() == nil {
			logFor(id).Warnf("free the exited container in the runtime: %v", err)
		}
		c.mu.Lock()
		c.freed = err == nil
		c.mu.Unlock()
		first, err := c.recordExit(e, message)
		c.ops.Unlock()
		if err != nil {
			logFor(id).Errorf("record exit: %v", err)
		}
		if first {
			m.exited(ctx, c)
		}
	}()
}

// Start starts a created container's process.
func (m *Manager) Start(ctx context.Context, c *Container) error {
	c.ops.Lock()
	defer c.ops.Unlock()
	c.mu.Lock()
	id, state, removing, rt, restore := c.rec.ID, c.rec.State, c.removing, c.rec.Runtime, c.rec.restorePending()
	c.mu.Unlock()
	if removing {
		return errdefs.FailedPreconditionf("container %s is being removed", id)
	}
	if state != StateCreated {
		return errdefs.FailedPreconditionf("container %s is %s, not created", id, state)
	}
	if restore {
		return m.startRestored(ctx, c)
	}
	started := time.Now()
	if err := m.changing(ctx, &Change{Step: StepStart, Container: c}); err != nil {
		return err
	}
	endStart := steptrace.Begin(ctx, "runtime start")
	err := rt.Start(ctx, id)
	endStart()
	if err != nil {
		return fmt.Errorf("start container %s: %w", id, err)
	}
	endRecord := steptrace.Begin(ctx, "record")
	// Not fsynced: a container recorded as created or running is found
	// dead and recorded as exited after a reboot either way (see adopt).
	err = c.update(record.Progress, func(st *Status) error {
		st.StartedAt = started
		// The exit watcher waits for c.ops, so the container is still
		// "created" here even if its process is already gone.
		st.State = StateRunning
		return nil
	})
	endRecord()
	if err != nil {
		return err
	}
	m.changed(ctx, c, StepStarted) // still under c.ops: before the exit is told
	return nil
}

// Stop sends the container's stop signal, waits up to timeout for it to
// exit, then kills it. A timeout of zero kills at once. Stopping a
// container that is not running succeeds.
func (m *Manager) Stop(ctx context.Context, c *Container, timeout time.Duration) error {
	c.mu.Lock()
	rec := c.rec
	c.mu.Unlock()
	if rec.State != StateCreated && rec.State != StateRunning {
		return nil
	}
	if rec.State == StateCreated && rec.restorePending() {
		if done, err := m.stopUnrestored(ctx, c); done {
			return err
		}
		rec = c.Record() // StartContainer restored it meanwhile
	}
	if rec.State == StateRunning && timeout > 0 {
		sig, err := ParseSignal(rec.StopSignal)
		if err != nil {
			logFor(rec.ID).Warnf("stop signal %q: %v; using SIGTERM", rec.StopSignal, err)
			sig = syscall.SIGTERM
		}
		endSignal := steptrace.Begin(ctx, "stop signal")
		if err := signalContainer(ctx, c, rec, sig, false); err != nil {
			logFor(rec.ID).Debugf("stop signal: %v", err) // it may have just exited
		}
		endSignal()
		t := time.NewTimer(timeout)
		defer t.Stop()
		endWait := steptrace.Begin(ctx, "wait exit")
		select {
		case <-c.exited:
			endWait()
			return nil
		case <-ctx.Done():
			return fmt.Errorf("stop container %s: %w", rec.ID, ctx.Err())
		case <-t.C:
			endWait()
			logFor(rec.ID).Infof("did not exit %s after %s: killing it", timeout, sigName(sig))
		}
	}
	return m.kill(ctx, c)
}

// kill SIGKILLs the container (all its processes where it shares a PID
// namespace) and waits for the exit to be recorded.
func (m *Manager) kill(ctx context.Context, c *Container) error {
	c.mu.Lock()
	rec := c.rec
	c.mu.Unlock()
	select {
	case <-c.exited:
		return nil
	default:
	}
	defer steptrace.Begin(ctx, "kill")()
	killErr := signalContainer(ctx, c, rec, syscall.SIGKILL, rec.SharedPID)
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, killWait)
		defer cancel()
	}
	select {
	case <-c.exited:
		return nil
	case <-ctx.Done():
		if killErr != nil {
			return fmt.Errorf("kill container %s: %w", rec.ID, killErr)
		}
		return fmt.Errorf("kill container %s: no exit recorded: %w", rec.ID, ctx.Err())
	}
}

// Remove stops the container at once if it still runs, then removes
// everything it had: runtime state, rootfs, bundle, exit file, record.
func (m *Manager) Remove(ctx context.Context, c *Container) error {
	c.mu.Lock()
	c.removing = true
	c.mu.Unlock()
	if err := m.Stop(ctx, c, 0); err != nil {
		return err
	}
	if err := m.teardown(ctx, c); err != nil {
		return err
	}
	m.forget(c.rec.ID)
	m.changed(ctx, c, StepRemoved)
	return nil
}

// teardown removes what a container has, in the order that lets a crash
// halfway be finished by the next start: the record goes last.
func (m *Manager) teardown(ctx context.Context, c *Container) error {
	id := c.rec.ID
	var errs []error
	c.mu.Lock()
	freed := c.freed
	c.mu.Unlock()
	if c.rec.Runtime.Path != "" && !freed {
		endDelete := steptrace.Begin(ctx, "runtime delete")
		if err := c.rec.Runtime.Delete(ctx, id); err != nil {
			errs = append(errs, err)
		}
		endDelete()
	}
	if !c.rec.Infra && m.opts.Rootfs != nil {
		endRootfs := steptrace.Begin(ctx, "remove rootfs")
		if err := m.opts.Rootfs.RemoveContainerRootfs(id); err != nil {
			errs = append(errs, fmt.Errorf("remove rootfs: %w", err))
		}
		endRootfs()
	}
	if c.rec.Restore != nil {
		if err := unmountRestoreWork(c.paths); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		// Keep the record: a later remove (or restart) tries again.
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	defer steptrace.Begin(ctx, "remove files")()
	for _, p := range []string{c.paths.run, c.paths.exit, c.paths.dir} {
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("remove container %s: %w", id, err)
		}
	}
	return nil
}

// ParseSignal reads a signal as images and the CRI name it: "SIGTERM",
// "TERM", "15", "SIGRTMIN+3".
func ParseSignal(s string) (syscall.Signal, error) {
	s = strings.ToUpper(strings.TrimSpace(s))
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("signal %d is out of range", n)
		}
		return syscall.Signal(n), nil
	}
	if !strings.HasPrefix(s, "SIG") {
		s = "SIG" + s
	}
	for _, rt := range []struct {
		prefix string
		base   int
		sign   int
	}{{"SIGRTMIN+", 34, 1}, {"SIGRTMAX-", 64, -1}} {
		if rest, ok := strings.CutPrefix(s, rt.prefix); ok {
			n, err := strconv.Atoi(rest)
			if err != nil || n < 0 || n > 30 {
				return 0, fmt.Errorf("signal %q is not known", s)
			}
			return syscall.Signal(rt.base + rt.sign*n), nil
		}
	}
	switch s {
	case "SIGRTMIN":
		return 34, nil
	case "SIGRTMAX":
		return 64, nil
	}
	if sig := unix.SignalNum(s); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("signal %q is not known", s)
}

func sigName(sig syscall.Signal) string {
	if n := unix.SignalName(sig); n != "" {
		return n
	}
	return strconv.Itoa(int(sig))
}
