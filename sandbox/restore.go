package sandbox

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/berth-cri/berth/ids"
	"github.com/berth-cri/berth/record"
)

// restore rebuilds the Manager's view from the records: pods a crash left
// "creating" are torn down and forgotten, ready pods whose namespaces are
// gone (a reboot) are stopped, and pins or mounts that belong to no record
// are removed.
func (m *Manager) restore(ctx context.Context) error {
	err := record.Walk(m.records, ids.Valid, func(id string, rec *podRecord, err error) {
		log := logrus.WithField("pod_sandbox_id", id)
		if rec != nil && err != nil {
			log.Warn(err) // migrated, usable
			err = nil
		}
		switch {
		case errors.Is(err, record.ErrNotRecordDir):
			log.Warnf("ignoring %v", err)
			return
		case errors.Is(err, fs.ErrNotExist):
			// A crash between making the pod's directory and writing its
			// first record: nothing else of the pod was made yet, and
			// removeOrphans removes the directory.
			return
		case err != nil:
			// Left in place for a person to look at: guessing what to
			// tear down from an unreadable record could remove too much.
			log.Errorf("cannot restore pod: %v", err)
			return
		}
		cfg, err := rec.config()
		if err != nil {
			log.Errorf("cannot restore pod: %s: %v", m.recordPath(id), err)
			return
		}
		sb := rec.Sandbox.Clone()
		sb.Config = cfg
		p := &pod{sb: sb, cgroup: rec.Cgroup, net: rec.Network}
		m.pods[id] = p

		switch {
		case sb.State == StateCreating:
			log.Warn("pod was being created when berthd stopped: tearing it down")
			if err := m.teardown(ctx, p, true); err != nil {
				// The record stays: the next start tries again.
				log.Errorf("tearing down the half-created pod: %v", err)
			}
			delete(m.pods, id)
			return
		case sb.State == StateReady && (rec.BootID != m.bootID || !pinsAlive(sb)):
			log.Warn("pod's namespaces did not survive (reboot?): stopping it; it stays NOTREADY until removed")
			if err := m.teardown(ctx, p, false); err != nil {
				log.Errorf("stopping the pod: %v", err)
			}
		case sb.State == StateReady:
			m.restoreInfra(p)
		}
		m.names[sb.Metadata] = id
	})
	if err != nil {
		return err
	}
	m.removeOrphans()
	return nil
}

// pinsAlive reports whether every namespace the pod claims is still pinned.
func pinsAlive(sb *Sandbox) bool {
	for _, p := range []string{sb.NetNSPath, sb.IPCNSPath, sb.UTSNSPath, sb.PIDNSPath, sb.UserNSPath} {
		if p != "" && !isPinned(p) {
			return false
		}
	}
	return true
}

// removeOrphans unpins, unmounts and removes what is under the run root
// and the root for pods that have no record (a crash inside Remove, after
// the record went, or inside RunPodSandbox, before the first one was
// written).
func (m *Manager) removeOrphans() {
	owned := func(id string) bool {
		if strings.HasPrefix(id, ".") {
			return true
		}
		if _, ok := m.pods[id]; ok {
			return true
		}
		_, err := os.Stat(m.recordPath(id))
		return err == nil // a record we could not read: leave it all
	}
	for _, dir := range []string{m.nsDir, m.runPodsDir, m.podsDir} {
		for _, id := range record.Unowned(dir, owned) {
			log := logrus.WithField("pod_sandbox_id", id)
			if !ids.Valid(id) {
				log.Warnf("ignoring %s: not a pod's", filepath.Join(dir, id))
				continue
			}
			log.Warn("removing what is left of a removed pod")
			if err := m.unpinAll(id); err != nil {
				log.Error(err)
			}
			if err := unmountShm(filepath.Join(m.runPodsDir, id, "shm")); err != nil {
				log.Error(err)
				continue
			}
			if err := m.removeDirs(id); err != nil {
				log.Error(err)
			}
		}
	}
}
