package oci

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/atomicfile"
	"github.com/berth-cri/berth/monitor"
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

// Record is a container as stored on disk and handed out (as a copy).
type Record struct {
	ID      string `json:"id"`
	PodID   string `json:"podId"`
	Name    string `json:"name"`
	Attempt uint32 `json:"attempt"`
	// Infra marks a pod's infra process: not a CRI container, never listed.
	Infra bool `json:"infra,omitempty"`

	// Runtime is the handler the container was created with; kept whole
	// so the container is still managed if the config changes.
	Runtime Runtime `json:"runtime"`

	Image    string `json:"image"`
	ImageRef string `json:"imageRef"`
	ImageID  string `json:"imageId"`

	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// LogPath is the CRI log file (absolute), empty for none.
	LogPath string `json:"logPath,omitempty"`
	// LogDir is the pod's log directory, which LogPath is beneath.
	LogDir string  `json:"logDir,omitempty"`
	Mounts []Mount `json:"mounts,omitempty"`
	User   User    `json:"user"`
	// Resources are the CRI resources as last requested.
	Resources *runtimeapi.LinuxContainerResources `json:"resources,omitempty"`
	// StopSignal is the signal StopContainer sends first (e.g. SIGTERM).
	StopSignal string `json:"stopSignal"`
	// SharedPID: the container does not own its PID namespace, so a stop
	// must kill all its processes, not just its init.
	SharedPID bool `json:"sharedPid,omitempty"`
	Tty       bool `json:"tty,omitempty"`
	Stdin     bool `json:"stdin,omitempty"`
	StdinOnce bool `json:"stdinOnce,omitempty"`

	// Restore is set for a container made from a checkpoint archive.
	Restore *RestoreSource `json:"restore,omitempty"`

	State      State     `json:"state"`
	CreatedAt  time.Time `json:"createdAt"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
	ExitCode   int32     `json:"exitCode"`
	Reason     string    `json:"reason,omitempty"`
	Message    string    `json:"message,omitempty"`
	PID        int       `json:"pid,omitempty"`
	MonitorPID int       `json:"monitorPid,omitempty"`
	// MonitorStart is the monitor's start time (/proc/<pid>/stat), which
	// tells it from a later process with the same pid.
	MonitorStart uint64 `json:"monitorStart,omitempty"`
}

// Container is one container's live state. Its record changes only under
// mu; exited is closed once the exit is recorded.
type Container struct {
	// ops serializes the runtime calls that move the container's state
	// (start, update, and the delete that precedes recording its exit).
	// It is taken before mu and held across the runtime call, so that
	// readers of the record (ListContainers, ContainerStatus), which take
	// only mu, never wait for a runtime.
	ops    sync.Mutex
	mu     sync.Mutex
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
	dir     string // <root>/containers/<id>: the record
	run     string // <runroot>/containers/<id>: the bundle and sockets
	exit    string // <runroot>/exits/<id>
	logPath string
}

func (p paths) record() string  { return filepath.Join(p.dir, "container.json") }
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

func (r Record) clone() Record {
	out := r
	out.Labels = cloneMap(r.Labels)
	out.Annotations = cloneMap(r.Annotations)
	out.Mounts = append([]Mount(nil), r.Mounts...)
	out.User.Groups = append([]uint32(nil), r.User.Groups...)
	if r.Restore != nil {
		rs := *r.Restore
		out.Restore = &rs
	}
	return out
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// save writes the record atomically; the caller holds c.mu (or owns c
// alone).
func (c *Container) save() error {
	return c.write(atomicfile.WriteFile)
}

// saveProgress is save without the fsyncs, for a state a reboot makes
// moot: a container recorded as created or running is found dead and
// recorded as exited after a reboot either way (see adopt).
func (c *Container) saveProgress() error {
	return c.write(atomicfile.WriteFileNoSync)
}

func (c *Container) write(replace func(string, []byte, os.FileMode) error) error {
	b, err := json.MarshalIndent(&c.rec, "", "  ")
	if err != nil {
		return fmt.Errorf("encode container %s: %w", c.rec.ID, err)
	}
	if err := replace(c.paths.record(), b, 0o600); err != nil {
		return fmt.Errorf("save container %s: %w", c.rec.ID, err)
	}
	return nil
}

func loadRecord(path string) (*Record, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return &r, nil
}

// recordExit records an exit under c.mu; the caller tells it with
// Manager.exited once c.mu is released. It reports false (and does
// nothing) for a container already exited.
func (c *Container) recordExit(e *monitor.Exit, message string) (bool, error) {
	if c.rec.State == StateExited {
		return false, nil
	}
	c.rec.State = StateExited
	c.rec.ExitCode = e.ExitCode
	c.rec.FinishedAt = e.ExitedAt
	if c.rec.FinishedAt.IsZero() {
		c.rec.FinishedAt = time.Now()
	}
	switch {
	case e.OOMKilled:
		c.rec.Reason = ReasonOOMKilled
	case e.ExitCode == 0:
		c.rec.Reason = ReasonCompleted
	default:
		c.rec.Reason = ReasonError
	}
	// The message is Berth's own account of the exit (a lost monitor),
	// never the container's termination-message file: kubelet reads that
	// file itself, through the mount ContainerStatus lists, and appends
	// it to this message (the CRI's message says why the container is in
	// its state; CRI-O and containerd put only their own errors there).
	c.rec.Message = message
	return true, c.save()
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
