package sandbox

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/encoding/protojson"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/atomicfile"
)

const (
	recordFile    = "sandbox.json"
	recordVersion = 1
)

// record is a pod on disk: the Sandbox plus what teardown needs after a
// restart. It is replaced atomically at every step of the pod's life.
type record struct {
	Version int `json:"version"`
	Sandbox
	// Config is the PodSandboxConfig in protojson, the CRI's own JSON.
	Config json.RawMessage `json:"config"`
	// BootID is the kernel boot id when the pod was made ready: another
	// boot means its namespaces and mounts are gone.
	BootID  string      `json:"bootId"`
	Cgroup  *podCgroup  `json:"cgroup,omitempty"`
	Network *podNetwork `json:"network,omitempty"`
}

func (m *Manager) recordPath(id string) string {
	return filepath.Join(m.podsDir, id, recordFile)
}

// writeRecord persists the pod as sb says, with p's teardown state. The
// caller holds p.op.
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
	b, err := json.MarshalIndent(record{
		Version: recordVersion,
		Sandbox: *sb,
		Config:  cfg,
		BootID:  m.bootID,
		Cgroup:  p.cgroup,
		Network: p.net,
	}, "", "  ")
	if err != nil {
		return fmt.Errorf("pod %s: encode record: %w", sb.ID, err)
	}
	return atomicfile.WriteFile(m.recordPath(sb.ID), b, 0o600)
}

func readRecord(path string) (*record, *runtimeapi.PodSandboxConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if r.Version != recordVersion {
		return nil, nil, fmt.Errorf("%s: record version %d, this berthd reads %d", path, r.Version, recordVersion)
	}
	cfg := &runtimeapi.PodSandboxConfig{}
	if len(r.Config) > 0 {
		// Fields this berthd's CRI version does not know (a record written
		// by a newer berthd, before a rollback) must not make the pod
		// unrestorable, and so leak its network and mounts.
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(r.Config, cfg); err != nil {
			return nil, nil, fmt.Errorf("%s: config: %w", path, err)
		}
	}
	return &r, cfg, nil
}
