package oci

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/record"
)

// recordVersion is the container record's format. 0 is the format from
// before versions (no version key; resources as encoding/json wrote the
// generated protobuf struct); 1 has the version and resources in
// protojson, the CRI's own JSON, as the pod record's config.
const recordVersion = 1

// Record is a container as stored on disk and handed out (as a copy):
// what it is (Metadata) and where it is in its life (Status).
type Record struct {
	Metadata
	Status
}

// Metadata is what a container is. It is filled in while Create owns the
// container alone (define) and does not change once the container is
// created.
type Metadata struct {
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
	// StopSignal is the signal StopContainer sends first (e.g. SIGTERM).
	StopSignal string `json:"stopSignal"`
	// SharedPID: the container does not own its PID namespace, so a stop
	// must kill all its processes, not just its init.
	SharedPID bool `json:"sharedPid,omitempty"`
	Tty       bool `json:"tty,omitempty"`
	Stdin     bool `json:"stdin,omitempty"`
	StdinOnce bool `json:"stdinOnce,omitempty"`

	CreatedAt time.Time `json:"createdAt"`
}

// Status is where a container is in its life. It changes only through
// Container.update, which saves it.
type Status struct {
	State      State     `json:"state"`
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
	// Resources are the CRI resources as last requested (protojson on
	// disk).
	Resources *runtimeapi.LinuxContainerResources `json:"resources,omitempty"`
	// Restore is set for a container made from a checkpoint archive; its
	// Done changes when StartContainer restored it.
	Restore *RestoreSource `json:"restore,omitempty"`
}

// RecordID is the record's id, which record.Walk checks.
func (r *Record) RecordID() string { return r.ID }

// recordJSON is a record's encoding: Resources, a protobuf message, in
// protojson (it shadows Status.Resources, being shallower).
type recordJSON struct {
	Metadata
	Status
	Resources json.RawMessage `json:"resources,omitempty"`
}

// MarshalJSON encodes the record with its CRI resources in protojson.
func (r Record) MarshalJSON() ([]byte, error) {
	out := recordJSON{Metadata: r.Metadata, Status: r.Status}
	if r.Resources != nil {
		b, err := protojson.Marshal(r.Resources)
		if err != nil {
			return nil, fmt.Errorf("resources: %w", err)
		}
		out.Resources = b
	}
	return json.Marshal(out)
}

// UnmarshalJSON decodes a record of the current version.
func (r *Record) UnmarshalJSON(b []byte) error {
	var in recordJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*r = Record{Metadata: in.Metadata, Status: in.Status}
	r.Resources = nil
	if len(in.Resources) > 0 && string(in.Resources) != "null" {
		res := &runtimeapi.LinuxContainerResources{}
		// A field only a newer CRI knows must not make the container
		// unrestorable (as for the pod record's config).
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(in.Resources, res); err != nil {
			return fmt.Errorf("resources: %w", err)
		}
		r.Resources = res
	}
	return nil
}

// migrateRecord brings a container record of an older version to
// recordVersion.
func migrateRecord(from int, b []byte) ([]byte, error) {
	if from != 0 {
		return nil, fmt.Errorf("no migration from version %d", from)
	}
	// Version 0: everything as version 1 but the resources, which were
	// encoding/json's rendering of the generated struct (snake_case
	// keys, int64 as numbers).
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return nil, err
	}
	raw, ok := fields["resources"]
	if !ok || string(raw) == "null" {
		return b, nil
	}
	res := &runtimeapi.LinuxContainerResources{}
	if err := json.Unmarshal(raw, res); err != nil {
		return nil, fmt.Errorf("resources: %w", err)
	}
	pj, err := protojson.Marshal(res)
	if err != nil {
		return nil, fmt.Errorf("resources: %w", err)
	}
	fields["resources"] = pj
	return json.Marshal(fields)
}

// newRecordStore is the store of the container records under dir.
func newRecordStore(dir string) *record.Store {
	return &record.Store{
		Dir: dir, File: "container.json", Noun: "container",
		Version: recordVersion, Migrate: migrateRecord,
	}
}

func (r Record) clone() Record {
	out := r
	out.Labels = cloneMap(r.Labels)
	out.Annotations = cloneMap(r.Annotations)
	out.Mounts = append([]Mount(nil), r.Mounts...)
	out.User.Groups = append([]uint32(nil), r.User.Groups...)
	out.Status = r.Status.clone()
	return out
}

// clone copies what a status shares by pointer. Resources are replaced
// whole by an update, never changed in place, so they are shared.
func (s Status) clone() Status {
	if s.Restore != nil {
		rs := *s.Restore
		s.Restore = &rs
	}
	return s
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

// errUnchanged, returned by an update's change, leaves the status and
// the record as they were, and update returns nil.
var errUnchanged = errors.New("unchanged")

// update is the one way a container's status changes and the one place a
// container record is saved: change edits a copy of the status under
// c.mu, the whole record with that copy is saved (durably or not, see
// record.Sync), and only then does the copy become the status. If change
// or the save fails, the status is as it was: what Get and List answer is
// what a restart would read. A nil change saves the record as it is (the
// first, "creating" record). The caller does not hold c.mu.
func (c *Container) update(sync record.Sync, change func(*Status) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := c.rec.clone()
	if change != nil {
		if err := change(&next.Status); errors.Is(err, errUnchanged) {
			return nil
		} else if err != nil {
			return err
		}
	}
	if err := c.paths.store.Save(c.rec.ID, next, sync); err != nil {
		return err
	}
	c.rec.Status = next.Status
	return nil
}

// define fills in the container's metadata while Create owns it alone:
// before its record says created. It is not saved here: the next update
// saves the record whole.
func (c *Container) define(fill func(*Metadata)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rec.State != StateCreating {
		panic(fmt.Sprintf("container %s: metadata changed when %s", c.rec.ID, c.rec.State))
	}
	fill(&c.rec.Metadata)
}
