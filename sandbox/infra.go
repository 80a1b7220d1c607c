package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/sirupsen/logrus"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/errdefs"
)

// Infra is a pod's infra process as its runner reports it.
type Infra struct {
	// PID is for people (verbose status); nothing names the process by it.
	PID int
	// PIDNamespace is the infra's PID namespace, opened while the process
	// was known to be the infra (through a pidfd, never a bare pid); nil
	// where there is none to share (a VM runtime). The Manager pins it
	// and closes the file.
	PIDNamespace *os.File
	// Exited is closed once the infra's exit is recorded.
	Exited <-chan struct{}
}

// InfraRunner runs infra processes. The Manager decides which pods need
// one, starts it as the last step of making the pod, watches it, and
// stops it in every teardown (a failed RunPodSandbox included); the
// runner only runs it. It is given to the Manager at construction, as
// containerd gives its sandbox controller, so no half-made pod waits for
// somebody else to stop its infra.
type InfraRunner interface {
	// Start starts the infra of sb (its namespaces, cgroup and handler as
	// sb names them). On error it leaves nothing running.
	Start(ctx context.Context, sb *Sandbox) (*Infra, error)
	// Find returns the running infra of a pod (after berthd restarted),
	// or a not-found error when none runs.
	Find(podID string) (*Infra, error)
	// Stop stops and removes the pod's infra; none is no error.
	Stop(ctx context.Context, podID string) error
}

// needsInfra: a shared PID namespace needs a PID 1 (which also reaps
// zombies), and a VM runtime always needs one (the VM is the pod).
func needsInfra(cfg *runtimeapi.PodSandboxConfig, vm bool) bool {
	return vm || namespaceOptions(cfg).GetPid() == runtimeapi.NamespaceMode_POD
}

// startInfra starts the pod's infra and pins its PID namespace beside the
// pod's other namespaces: the pin, not /proc/<pid>, is what containers
// join, so a pid the kernel hands to another process after the infra died
// can never lead a container into that process's namespace.
func (m *Manager) startInfra(ctx context.Context, sb *Sandbox) (<-chan struct{}, error) {
	if m.opts.Infra == nil {
		return nil, errors.New("infra: berthd has no infra runner")
	}
	inf, err := m.opts.Infra.Start(ctx, sb.Clone())
	if err != nil {
		return nil, fmt.Errorf("infra: %w", err)
	}
	sb.InfraPID = inf.PID
	if inf.PIDNamespace != nil {
		pin, err := m.pinPIDNamespace(sb.ID, inf.PIDNamespace)
		if err != nil {
			return nil, err
		}
		sb.PIDNSPath = pin
	}
	return inf.Exited, nil
}

// pinPIDNamespace bind-mounts the open namespace file at the pod's "pid"
// pin and closes the file.
func (m *Manager) pinPIDNamespace(id string, ns *os.File) (string, error) {
	defer ns.Close()
	dir := filepath.Join(m.nsDir, id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("pin PID namespace: %w", err)
	}
	pin := filepath.Join(dir, "pid")
	if err := bindNamespace("/proc/self/fd/"+strconv.Itoa(int(ns.Fd())), pin); err != nil {
		return "", err
	}
	return pin, nil
}

// stopInfra stops the pod's infra if it may have one. Every teardown
// calls it first: whatever step a RunPodSandbox or a crash stopped at,
// an infra that was started does not outlive its pod.
func (m *Manager) stopInfra(ctx context.Context, sb *Sandbox) error {
	if !sb.Infra || m.opts.Infra == nil {
		return nil
	}
	if err := m.opts.Infra.Stop(ctx, sb.ID); err != nil {
		return fmt.Errorf("stop the pod's infra: %w", err)
	}
	return nil
}

// watchInfra marks the pod NOTREADY when its infra exits (a container
// of the pod can kill it: it is PID 1 of their namespace), so kubelet
// recreates the pod and no container is created in it any more.
func (m *Manager) watchInfra(p *pod, exited <-chan struct{}) {
	if exited == nil {
		return
	}
	go func() {
		defer func() {
			if r := recover(); r != nil {
				logPanic("infra watcher", r)
			}
		}()
		select {
		case <-exited:
		case <-m.closing:
			return
		}
		p.op.Lock()
		defer p.op.Unlock()
		if p.removed {
			return
		}
		sb := m.current(p)
		if sb.State != StateReady {
			return
		}
		logrus.WithField("pod_sandbox_id", sb.ID).Warn("the pod's infra process exited: the pod is NOTREADY")
		m.markNotReady(p)
	}()
}

// restoreInfra watches the infra of a ready pod again after a restart; a
// pod whose infra is gone is NOTREADY. A pod recorded by an older berthd
// with its PID namespace as a /proc path gets it pinned now.
func (m *Manager) restoreInfra(p *pod) {
	sb := m.current(p)
	if sb.State != StateReady || !sb.Infra || m.opts.Infra == nil {
		return
	}
	log := logrus.WithField("pod_sandbox_id", sb.ID)
	inf, err := m.opts.Infra.Find(sb.ID)
	if err != nil {
		if !errdefs.IsNotFound(err) {
			log.Warnf("find the pod's infra: %v", err)
		}
		log.Warn("the pod's infra process is gone: the pod is NOTREADY")
		m.markNotReady(p)
		return
	}
	if inf.PIDNamespace != nil {
		pinned := filepath.Join(m.nsDir, sb.ID, "pid")
		if sb.PIDNSPath != "" && sb.PIDNSPath != pinned {
			if pin, err := m.pinPIDNamespace(sb.ID, inf.PIDNamespace); err != nil {
				log.Errorf("pin the pod's PID namespace: %v", err)
			} else {
				if _, err := m.update(context.Background(), p, func(st *Status) error {
					st.PIDNSPath = pin
					return nil
				}); err != nil {
					log.Errorf("record the pinned PID namespace: %v", err)
				}
			}
		} else {
			inf.PIDNamespace.Close()
		}
	}
	m.watchInfra(p, inf.Exited)
}

// current returns a copy of p's published state.
// markNotReady records p NOTREADY (its infra is gone), and publishes it
// so even if the record fails: CreateContainer must not use the pod. The
// caller holds p.op.
func (m *Manager) markNotReady(p *pod) {
	ctx := context.Background()
	if _, err := m.update(ctx, p, func(st *Status) error {
		st.State = StateNotReady
		return nil
	}); err != nil {
		sb := m.current(p)
		logrus.WithField("pod_sandbox_id", sb.ID).Errorf("record the NOTREADY pod: %v", err)
		sb.State = StateNotReady
		m.setSandbox(ctx, p, sb)
	}
}

func (m *Manager) current(p *pod) *Sandbox {
	m.mu.Lock()
	defer m.mu.Unlock()
	return p.sb.Clone()
}

// logPanic logs a panic recovered in one of the Manager's goroutines,
// which must not take berthd down.
func logPanic(what string, r any) {
	err := errdefs.Recovered(r)
	var pe *errdefs.PanicError
	errors.As(err, &pe)
	logrus.Errorf("%s: %v\n%s", what, err, pe.Stack)
}
