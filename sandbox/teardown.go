package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/moby/sys/mountinfo"

	"github.com/berth-cri/berth/atomicfile"
	"github.com/berth-cri/berth/errdefs"
	"github.com/berth-cri/berth/steptrace"
)

// teardownTimeout bounds CNI DEL. Teardown never runs on the caller's
// context: a caller giving up must not leave a pod half torn down.
const teardownTimeout = 2 * time.Minute

// Containers stops or removes every container of a pod. Stop and Remove
// call it with the pod marked NOTREADY, so that no CreateContainer can
// begin in the pod any more, and before its infra and network go.
type Containers func(ctx context.Context, podID string) error

// Stop marks the pod NOTREADY, has its containers stopped, stops its
// infra, tears its network down (CNI DEL, which releases its IPs and
// host-side interfaces), unpins its namespaces and unmounts its /dev/shm.
// The pod stays, NOTREADY, until Remove. Stopping a stopped or unknown
// pod succeeds, as kubelet expects.
func (m *Manager) Stop(ctx context.Context, id string, containers Containers) error {
	p, err := m.find(id)
	if p == nil {
		return err
	}
	p.op.Lock()
	defer p.op.Unlock()
	if p.removed {
		return nil
	}
	if err := m.closeForContainers(ctx, p, containers, "stop"); err != nil {
		return err
	}
	if err := m.tellStop(ctx, p); err != nil {
		return err
	}
	return m.teardown(ctx, p, false)
}

// tellStop tells the notifier (NRI plugins), once, that the pod stops,
// after its containers stopped. The caller holds p.op.
func (m *Manager) tellStop(ctx context.Context, p *pod) error {
	if p.stopTold {
		return nil
	}
	m.mu.Lock()
	sb := p.sb.Clone()
	m.mu.Unlock()
	if err := m.changing(ctx, StepStop, sb); err != nil {
		return err
	}
	p.stopTold = true
	return nil
}

// Remove stops the pod if needed (its containers removed through
// containers) and removes everything of it: cgroup, files, record, name
// reservation. Removing an unknown pod succeeds.
func (m *Manager) Remove(ctx context.Context, id string, containers Containers) error {
	p, err := m.find(id)
	if p == nil {
		return err
	}
	p.op.Lock()
	defer p.op.Unlock()
	if p.removed {
		return nil
	}
	if err := m.closeForContainers(ctx, p, containers, "remove"); err != nil {
		return err
	}
	if err := m.tellStop(ctx, p); err != nil {
		return err
	}
	if err := m.teardown(ctx, p, true); err != nil {
		return err
	}
	m.mu.Lock()
	sb := p.sb.Clone()
	delete(m.pods, p.sb.ID)
	m.releaseLocked(p.sb.Metadata, p.sb.ID)
	m.mu.Unlock()
	m.changed(ctx, StepRemoved, sb)
	return nil
}

// closeForContainers marks a ready pod NOTREADY, recorded, and then runs
// containers on it. CreateContainer checks that the pod is ready after it
// registered its call, and the container side of Stop and Remove waits
// for the calls registered: so a create either is waited for or sees the
// pod NOTREADY, never builds a container in a pod being removed.
// The caller holds p.op.
func (m *Manager) closeForContainers(ctx context.Context, p *pod, containers Containers, what string) error {
	sb := m.current(p)
	if sb.State == StateReady {
		if _, err := m.update(ctx, p, func(st *Status) error {
			st.State = StateNotReady
			return nil
		}); err != nil {
			return err
		}
	}
	if containers == nil {
		return nil
	}
	if err := containers(ctx, sb.ID); err != nil {
		return fmt.Errorf("%s the containers of pod %s: %w", what, truncID(sb.ID), err)
	}
	return nil
}

// find looks a pod up for Stop and Remove: an unknown id is no error
// (nil, nil), a bad or ambiguous one is.
func (m *Manager) find(ref string) (*pod, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, err := m.lookupLocked(ref)
	if errdefs.IsNotFound(err) {
		return nil, nil
	}
	return p, err
}

// teardown undoes whatever of the pod exists (its infra first), in reverse order of
// creation, and works from any point a RunPodSandbox or a crash stopped
// at: every step is idempotent and finds its work from the record and the
// pod's fixed paths, not from what the pod claims to have. It goes on past
// a failed step, so one failure does not leak the rest, and returns all
// the failures. With remove, it also removes the cgroup, files and record.
// The caller holds p.op.
func (m *Manager) teardown(ctx context.Context, p *pod, remove bool) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), teardownTimeout)
	defer cancel()
	m.mu.Lock()
	sb := p.sb.Clone()
	m.mu.Unlock()
	id := sb.ID
	var errs []error

	endInfra := steptrace.Begin(ctx, "infra")
	if err := m.stopInfra(ctx, sb); err != nil {
		errs = append(errs, err)
	}
	endInfra()
	if p.net != nil && p.net.Attached {
		endCNI := steptrace.Begin(ctx, "cni del")
		if err := m.net.detach(ctx, id, p.net); err != nil {
			errs = append(errs, err)
		} else {
			p.net.Attached = false
		}
		endCNI()
	}
	endNS := steptrace.Begin(ctx, "namespaces")
	if err := m.unpinAll(id); err != nil {
		errs = append(errs, err)
	}
	if err := unmountShm(filepath.Join(m.runPodsDir, id, "shm")); err != nil {
		errs = append(errs, err)
	}
	endNS()
	// What is undone, for the record teardown keeps when it stops
	// short of removing the pod.
	undone := func(st *Status) error {
		st.NetNSPath, st.IPCNSPath, st.UTSNSPath, st.ShmPath = "", "", "", ""
		st.UserNSPath = ""
		st.IPs = nil
		st.InfraPID, st.PIDNSPath = 0, ""
		if st.State == StateReady {
			st.State = StateNotReady
		}
		return nil
	}

	if !remove || len(errs) > 0 {
		// Keep what is left recorded, so Stop or Remove (or the next
		// start-up, for a pod still "creating") can try again.
		if _, err := m.update(ctx, p, undone); err != nil {
			errs = append(errs, err)
		}
		return wrapTeardown(id, errs)
	}

	if p.cgroup != nil {
		endCgroup := steptrace.Begin(ctx, "cgroup")
		err := removeCgroup(*p.cgroup)
		endCgroup()
		if err != nil {
			errs = append(errs, err)
			if _, err := m.update(ctx, p, undone); err != nil {
				errs = append(errs, err)
			}
			return wrapTeardown(id, errs)
		}
	}
	endDirs := steptrace.Begin(ctx, "remove files")
	err := m.removeDirs(id)
	endDirs()
	if err != nil {
		return wrapTeardown(id, []error{err})
	}
	p.removed = true
	return nil
}

func wrapTeardown(id string, errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("pod %s: teardown: %w", truncID(id), errors.Join(errs...))
}

// unpinAll unpins every namespace under the pod's pin directory (whatever
// the record says was pinned: a crash may have come between pinning and
// recording) and removes the directory.
func (m *Manager) unpinAll(id string) error {
	dir := filepath.Join(m.nsDir, id)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("unpin namespaces: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if err := unpin(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("unpin namespaces: %w", err)
	}
	return nil
}

// removeDirs removes the pod's run dir and state dir (record last). It
// refuses while anything is still mounted under them: RemoveAll through a
// mount would delete what is mounted there.
func (m *Manager) removeDirs(id string) error {
	runDir := filepath.Join(m.runPodsDir, id)
	dir := filepath.Join(m.podsDir, id)
	// One read of the mount table for both directories: on a busy node
	// it has hundreds of lines and each read costs milliseconds.
	notInRun, notInDir := mountinfo.PrefixFilter(runDir), mountinfo.PrefixFilter(dir)
	mounts, err := mountinfo.GetMounts(func(m *mountinfo.Info) (skip, stop bool) {
		skipRun, _ := notInRun(m)
		skipDir, _ := notInDir(m)
		return skipRun && skipDir, false
	})
	if err != nil {
		return fmt.Errorf("remove pod %s: read the mount table: %w", id, err)
	}
	if len(mounts) > 0 {
		return fmt.Errorf("remove pod %s: still mounted there: %s", id, mounts[0].Mountpoint)
	}
	if err := os.RemoveAll(runDir); err != nil {
		return fmt.Errorf("remove pod run dir: %w", err)
	}
	// Files first, the record last: a crash in between leaves a record
	// whose teardown finds nothing left to do.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != recordFile {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("remove pod files: %w", err)
			}
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove pod dir: %w", err)
	}
	return atomicfile.SyncDir(m.podsDir)
}
