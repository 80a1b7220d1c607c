package oci

import (
	"context"
	"path/filepath"
	"sync"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/monitorclient"
	"github.com/berth-cri/berth/record"
)

// State is where a container is in its life.
type State string

const (
	// StateCreating: CreateContainer is still working. A record found in
	// this state when berthd starts was cut short by a crash and is torn
	// down.
	StateCreating State = "creating"
	// StateCreated: the runtime created it; its process waits for start.
	StateCreated State = "created"
	// StateRunning: started, not yet exited.
	StateRunning State = "running"
	// StateExited: its init exited (or was never started and was killed).
	StateExited State = "exited"
)

// CRI is the state as the CRI spells it.
func (s State) CRI() runtimeapi.ContainerState {
	switch s {
	case StateCreated:
		return runtimeapi.ContainerState_CONTAINER_CREATED
	case StateRunning:
		return runtimeapi.ContainerState_CONTAINER_RUNNING
	case StateExited:
		return runtimeapi.ContainerState_CONTAINER_EXITED
	}
	return runtimeapi.ContainerState_CONTAINER_UNKNOWN
}

// Exit reasons, as kubelet reads them.
const (
	ReasonCompleted = "Completed"
	ReasonError     = "Error"
	ReasonOOMKilled = "OOMKilled"
)

// Container is one container's live state. Its record changes only under
// mu; exited is closed once the exit is recorded.
type Container struct {
	// ops serializes the runtime calls that move the container's state
	// (start, update, and the delete that precedes recording its exit).
	// It is taken before mu and held across the runtime call, so that
	// readers of the record (ListContainers, ContainerStatus), which take
	// only mu, never wait for a runtime.
	ops sync.Mutex
	mu  sync.Mutex
	// rec is the record: its Metadata is set before the container is
	// published, its Status changes only through update.
	rec    Record
	exited chan struct{}
	// removing is set once RemoveContainer began: no new exec or start.
	removing bool
	// delegation is Generated.Delegation, for launch; not recorded.
	delegation *Delegation
	// freed is set once the exit watcher deleted the container from its
	// runtime: RemoveContainer then need not run the runtime again.
	freed bool
	// execBase is the spec's process, loaded on the first exec.
	execBase *rspec.Process
	paths    paths
}

// paths are a container's files.
type paths struct {
	store   *record.Store // the container records
	dir     string        // <root>/containers/<id>: the record
	run     string        // <runroot>/containers/<id>: the bundle and sockets
	exit    string        // <runroot>/exits/<id>
	logPath string
}

func (p paths) record() string  { return filepath.Join(p.dir, p.store.File) }
func (p paths) spec() string    { return filepath.Join(p.run, "config.json") }
func (p paths) pidFile() string { return filepath.Join(p.run, "pid") }
func (p paths) attach() string  { return filepath.Join(p.run, "attach") }
func (p paths) control() string { return filepath.Join(p.run, "ctl") }
func (p paths) monLog() string  { return filepath.Join(p.run, "monitor.log") }

// Record returns a copy of the container's record.
func (c *Container) Record() Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rec.clone()
}

// ID is the container's id (immutable).
func (c *Container) ID() string { return c.rec.ID }

// Exited is closed once the container's exit is recorded.
func (c *Container) Exited() <-chan struct{} { return c.exited }

// recordExit records an exit; the caller tells it with Manager.exited.
// It reports false (and does nothing) for a container already exited.
func (c *Container) recordExit(e *monitorclient.Exit, message string) (bool, error) {
	first := false
	var exit Status
	err := c.update(record.Durable, func(st *Status) error {
		if st.State == StateExited {
			return errUnchanged
		}
		first = true
		st.State = StateExited
		st.ExitCode = e.ExitCode
		st.FinishedAt = e.ExitedAt
		if st.FinishedAt.IsZero() {
			st.FinishedAt = time.Now()
		}
		switch {
		case e.OOMKilled:
			st.Reason = ReasonOOMKilled
		case e.ExitCode == 0:
			st.Reason = ReasonCompleted
		default:
			st.Reason = ReasonError
		}
		// The message is Berth's own account of the exit (a lost
		// monitor), never the container's termination-message file:
		// kubelet reads that file itself, through the mount
		// ContainerStatus lists, and appends it to this message (the
		// CRI's message says why the container is in its state; CRI-O
		// and containerd put only their own errors there).
		st.Message = message
		exit = st.clone()
		return nil
	})
	if err != nil && first {
		// The one status not rolled back when its save fails: the exit
		// happened all the same, and a restart finds the container
		// ended again (its exit file stays until removal; without one,
		// its monitor is gone).
		c.mu.Lock()
		c.rec.Status = exit
		c.mu.Unlock()
	}
	return first, err
}

// exited tells a recorded exit, first to the notifier and then to
// whoever waits on Exited: so the record is written before Remove (woken
// by Exited) deletes its directory, and NRI plugins and the event stream
// hear of the exit before a StopContainer or RemoveContainer waiting for
// it returns (and before the removal is told).
func (m *Manager) exited(ctx context.Context, c *Container) {
	m.changed(ctx, c, StepExited)
	close(c.exited)
}
