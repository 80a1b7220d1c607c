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
)

// restore rebuilds the Manager's view from the records: pods a crash left
// "creating" are torn down and forgotten, ready pods whose namespaces are
// gone (a reboot) are stopped, and pins or mounts that belong to no record
// are removed.
func (m *Manager) restore(ctx context.Context) error {
	entries, err := os.ReadDir(m.podsDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		id := e.Name()
		log := logrus.WithField("pod_sandbox_id", id)
		if !e.IsDir() || !ids.Valid(id) {
			log.Warnf("ignoring %s: not a pod directory", filepath.Join(m.podsDir, id))
			continue
		}
		rec, cfg, err := readRecord(m.recordPath(id))
		if errors.Is(err, fs.ErrNotExist) {
			// A crash between making the pod's directory and writing its
			// first record: nothing else of the pod was made yet, and
			// removeOrphans removes the directory.
			continue
		}
		if err != nil {
			// Left in place for a person to look at: guessing what to
			// tear down from an unreadable record could remove too much.
			log.Errorf("cannot restore pod: %v", err)
			continue
		}
		if rec.ID != id {
			log.Errorf("cannot restore pod: its record names id %q", rec.ID)
			continue
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
			continue
		case sb.State == StateReady && (rec.BootID != m.bootID || !pinsAlive(sb)):
			log.Warn("pod's namespaces did not survive (reboot?): stopping it; it stays NOTREADY until removed")
			if err := m.teardown(ctx, p, false); err != nil {
				log.Errorf("stopping the pod: %v", err)
			}
		case sb.State == StateReady:
			m.restoreInfra(p)
		}
		m.names[sb.Metadata] = id
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
	for _, dir := range []string{m.nsDir, m.runPodsDir, m.podsDir} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			id := e.Name()
			if strings.HasPrefix(id, ".") {
				continue
			}
			if _, ok := m.pods[id]; ok {
				continue
			}
			if _, err := os.Stat(m.recordPath(id)); err == nil {
				continue // a record we could not read: leave it all
			}
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
