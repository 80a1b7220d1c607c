package sandbox

import (
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/record"
)

const (
	recordFile = "sandbox.json"
	// recordVersion is the pod record's format; the store writes it
	// beside the fields. Version 1 is the first (and today's) format.
	recordVersion = 1
)

// podRecord is a pod on disk: the Sandbox plus what teardown needs after
// a restart. It is replaced atomically at every step of the pod's life.
type podRecord struct {
	Sandbox
	// Config is the PodSandboxConfig in protojson, the CRI's own JSON.
	Config json.RawMessage `json:"config"`
	// BootID is the kernel boot id when the pod was made ready: another
	// boot means its namespaces and mounts are gone.
	BootID  string      `json:"bootId"`
	Cgroup  *podCgroup  `json:"cgroup,omitempty"`
	Network *podNetwork `json:"network,omitempty"`
}

// RecordID is the record's id, which record.Walk checks.
func (r *podRecord) RecordID() string { return r.ID }

// newRecordStore is the store of the pod records under podsDir.
func newRecordStore(podsDir string) *record.Store {
	return &record.Store{Dir: podsDir, File: recordFile, Noun: "pod", Version: recordVersion}
}

func (m *Manager) recordPath(id string) string {
	return m.records.Path(id)
}

// writeRecord persists the pod as sb says, with p's teardown state, for
// Manager.save.
//
// Every record replaces the last atomically and is fsynced: each pod
// record guards something a reboot leaves behind on disk (the pod's
// directories, an IPAM lease of the CNI plugins) or is the one an RPC
// answers with.
func (m *Manager) writeRecord(p *pod, sb *Sandbox) error {
	cfg, err := protojson.Marshal(sb.Config)
	if err != nil {
		return fmt.Errorf("pod %s: encode config: %w", sb.ID, err)
	}
	return m.records.Save(sb.ID, podRecord{
		Sandbox: *sb,
		Config:  cfg,
		BootID:  m.bootID,
		Cgroup:  p.cgroup,
		Network: p.net,
	}, record.Durable)
}

// readRecord loads id's record and its config.
func (m *Manager) readRecord(id string) (*podRecord, *runtimeapi.PodSandboxConfig, error) {
	var r podRecord
	if err := m.records.Load(id, &r); err != nil {
		return nil, nil, err
	}
	cfg, err := r.config()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", m.recordPath(id), err)
	}
	return &r, cfg, nil
}

// config decodes the record's PodSandboxConfig.
func (r *podRecord) config() (*runtimeapi.PodSandboxConfig, error) {
	cfg := &runtimeapi.PodSandboxConfig{}
	if len(r.Config) > 0 {
		// Fields this berthd's CRI version does not know (a record written
		// by a newer berthd, before a rollback) must not make the pod
		// unrestorable, and so leak its network and mounts.
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(r.Config, cfg); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	return cfg, nil
}
