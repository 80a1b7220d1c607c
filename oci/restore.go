package oci

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/berth-cri/berth/ids"
	"github.com/berth-cri/berth/monitorclient"
	"github.com/berth-cri/berth/record"
)

// restore rebuilds the container table from the records on disk. It
// returns the steps of CRI containers it found taken while berthd was
// down.
func (m *Manager) restore(ctx context.Context) ([]Change, error) {
	var found []Change
	var adoptErr error
	err := record.Walk(m.records, ids.Valid, func(id string, rec *Record, err error) {
		if adoptErr != nil {
			return
		}
		if rec != nil && err != nil {
			logFor(id).Warn(err) // migrated, usable
			err = nil
		}
		switch {
		case errors.Is(err, record.ErrNotRecordDir):
			logFor(id).Warnf("ignoring %v", err)
			return
		case errors.Is(err, fs.ErrNotExist):
			// A crash between the directory and the first record: only
			// the directory (and maybe a rootfs) exists; nothing ran.
			logFor(id).Warn("container directory without a record: removing it")
			c := m.newContainer(Record{Metadata: Metadata{ID: id}, Status: Status{State: StateCreating}})
			if err := m.teardown(ctx, c); err != nil {
				logFor(id).Errorf("clean up: %v", err)
			}
			return
		case err != nil:
			// Left alone for a person to look at, with its run directory,
			// exit file and rootfs: the container may be running, and a
			// guess at what to remove could kill or delete it.
			logFor(id).Errorf("cannot restore container, leaving it alone: %v", err)
			m.keep(id)
			return
		}
		c := m.newContainer(*rec)
		switch rec.State {
		case StateCreating:
			logFor(id).Info("removing a container whose creation was cut short")
			// Its monitor may still run, and the runtime's create under
			// it: a create finishing after the delete below would leave
			// a container and its monitor that no record names.
			killStrayMonitors(id, m.opts.MonitorPath)
			if err := m.teardown(ctx, c); err != nil {
				logFor(id).Errorf("clean up: %v", err)
			}
			return
		case StateExited:
			close(c.exited)
		case StateCreated, StateRunning:
			adopt := m.adopt
			if rec.State == StateCreated && rec.restorePending() {
				adopt = m.adoptUnrestored
			}
			step, err := adopt(ctx, c)
			if err != nil {
				adoptErr = fmt.Errorf("adopt container %s: %w", id, err)
				return
			}
			if step != 0 && !rec.Infra {
				found = append(found, Change{Step: step, Container: c})
			}
		default:
			// A newer berthd's state, or a damaged record: one container
			// must not keep berthd (and every other one) from starting.
			logFor(id).Errorf("cannot restore container, leaving it alone: unknown state %q in its record", rec.State)
			m.keep(id)
			return
		}
		m.add(c)
	})
	if err == nil {
		err = adoptErr
	}
	if err != nil {
		return nil, err
	}
	m.sweep()
	if err := m.sweepRootfs(); err != nil {
		return nil, err
	}
	return found, nil
}

// adopt takes a container that was created or running when berthd went
// down: its exit is recorded if it happened meanwhile, else its monitor
// is watched again (an infra's now, a CRI container's from Watch). It
// returns the step the container took while berthd was away, if any.
func (m *Manager) adopt(ctx context.Context, c *Container) (Step, error) {
	id := c.rec.ID
	if e, err := monitorclient.ReadExitFile(c.paths.exit); err == nil {
		// It exited while berthd was away: free the runtime's state, as
		// the exit watcher would have.
		if err := c.rec.Runtime.Delete(ctx, id); err != nil {
			logFor(id).Warnf("free the exited container in the runtime: %v", err)
		}
		return StepExited, m.adoptExit(c, e, "")
	}
	if !isMonitor(c.rec.MonitorPID, c.rec.MonitorStart, m.opts.MonitorPath, id) {
		// No monitor and no exit file: the node rebooted (the run root
		// is gone) or the monitor was killed. Nobody knows how the
		// container ended; make sure it has.
		if err := c.rec.Runtime.Delete(ctx, id); err != nil {
			logFor(id).Warnf("delete orphaned container: %v", err)
		}
		return StepExited, m.adoptExit(c, &monitorclient.Exit{ExitCode: 255, ExitedAt: time.Now()},
			"container state lost: its berth-monitor is gone (node rebooted, or the monitor was killed)")
	}
	var step Step
	if c.rec.State == StateCreated {
		// berthd may have died between the runtime's start and saving
		// the record: the runtime knows.
		if st, err := c.rec.Runtime.State(ctx, id); err == nil && st.Status == "running" {
			if err := c.update(record.Durable, func(st *Status) error {
				st.State = StateRunning
				st.StartedAt = time.Now()
				return nil
			}); err != nil {
				return 0, err
			}
			step = StepStarted
		}
	}
	if c.rec.Infra {
		m.watch(c)
	} else {
		m.unwatched = append(m.unwatched, c)
	}
	logFor(id).Debugf("adopted %s container (monitor %d)", c.rec.State, c.rec.MonitorPID)
	return step, nil
}

// adoptExit records an exit found at restore; restore returns it.
func (m *Manager) adoptExit(c *Container, e *monitorclient.Exit, message string) error {
	if _, err := c.recordExit(e, message); err != nil {
		return err
	}
	close(c.exited)
	return nil
}

// strayMonitorWait bounds the wait for a killed stray monitor to go.
const strayMonitorWait = 5 * time.Second

// killStrayMonitors SIGKILLs the process group of every monitor of id
// (the monitor leads its own session, and the runtime it runs is in its
// group) and waits for them to be gone. Only for a container whose record
// does not name its monitor: one whose creation was cut short. A monitor
// is a process running the monitor binary (by /proc/<pid>/exe) whose
// command line names the container; a process that only says so is not.
// It reports whether it found any.
func killStrayMonitors(id, monitorPath string) bool {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		logFor(id).Warnf("look for a stray monitor: %v", err)
		return false
	}
	var killed []procIdentity
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !isMonitor(pid, 0, monitorPath, id) {
			continue
		}
		start, err := procStartTime(pid)
		if err != nil {
			continue // gone
		}
		logFor(id).Infof("killing stray monitor %d", pid)
		if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		killed = append(killed, procIdentity{pid, start})
	}
	deadline := time.Now().Add(strayMonitorWait)
	for _, p := range killed {
		for isMonitor(p.pid, p.start, monitorPath, id) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	return len(killed) > 0
}

// sweep removes run directories and exit files no record owns: what a
// crash left between a teardown's steps.
func (m *Manager) sweep() {
	owned := func(name string) bool { return ids.Valid(name) && m.Known(name) }
	for _, dir := range []string{m.runDir, m.exitsDir} {
		for _, name := range record.Unowned(dir, owned) {
			p := filepath.Join(dir, name)
			if err := os.RemoveAll(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				logFor(name).Warnf("remove leftover %s: %v", p, err)
			}
		}
	}
}

// Known reports whether id is a container the manager has, or one it
// leaves alone because its record could not be read (for sweeping root
// filesystems no container owns).
func (m *Manager) Known(id string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	_, ok := m.ctrs[id]
	return ok || m.kept[id]
}

// keep marks a container whose record berthd cannot use: its files stay.
func (m *Manager) keep(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.kept[id] = true
}
