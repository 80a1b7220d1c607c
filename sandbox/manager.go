package sandbox

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/berth-cri/berth/cgroupdriver"
	"github.com/berth-cri/berth/ids"
	"github.com/berth-cri/berth/inflight"
	"github.com/berth-cri/berth/record"
	"github.com/berth-cri/berth/steptrace"
)

// Options configure a Manager. They are read once, at start-up.
type Options struct {
	// Root holds pod records and files (survives reboots); RunRoot holds
	// namespace pins and shm mounts (does not).
	Root    string
	RunRoot string
	// CgroupDriver is the driver new pods' cgroups are made with; a
	// request's cgroup_parent must be in its form.
	CgroupDriver cgroupdriver.Driver
	// CgroupParent is the parent of the cgroup of a pod whose request
	// names none, in the driver's form: the pod gets <CgroupParent>/pod-<id>
	// or the slice <CgroupParent minus .slice>-pod<id>.slice.
	CgroupParent string
	// ShmSize is the size in bytes of each pod's /dev/shm tmpfs.
	ShmSize int64
	// HostResolvConf is copied into pods whose request sets no DNS.
	HostResolvConf string
	Network        NetworkOptions
	// Notifier hears of every step of every pod; nil for none.
	Notifier Notifier
	// Infra runs the infra processes of the pods that need one.
	Infra InfraRunner
	// UsernsMinHostID is the lowest node id a pod's user namespace may
	// map (pod.userns_min_host_id).
	UsernsMinHostID uint32
}

// Manager owns every pod sandbox: it creates, stops, removes and restores
// them, and hands out copies for the rest of Berth to read.
type Manager struct {
	opts       Options
	podsDir    string // <root>/pods
	runPodsDir string // <runroot>/pods
	nsDir      string // <runroot>/ns
	records    *record.Store
	net        *network
	bootID     string

	// creates are the RunPodSandbox calls in flight (kubelet's retries
	// join them).
	creates *inflight.Calls[Metadata, podRequest]
	// closing ends the infra watchers on Close.
	closing   chan struct{}
	closeOnce sync.Once

	mu    sync.Mutex
	pods  map[string]*pod
	names map[Metadata]string // pod id by name, from ready until removed
	// usernsPending are the user namespace mappings of pods being
	// created (see reserveUserNS).
	usernsPending map[string]*userNS
}

// pod is the Manager's entry for one sandbox.
type pod struct {
	// op is held for the whole of any create, stop or remove, so two of
	// them never interleave on one pod.
	op sync.Mutex

	// sb is the current state, guarded by Manager.mu. It is replaced,
	// never modified, so a reader may keep the pointer it read.
	sb *Sandbox

	// Guarded by op: what teardown needs.
	cgroup  *podCgroup
	net     *podNetwork
	removed bool
	// stopTold: plugins heard that the pod stops (they hear it once).
	stopTold bool
}

// New returns a Manager with every pod restored from disk. Pods that a
// crash left half-created are torn down; ready pods whose namespaces did
// not survive (a reboot) are stopped and listed NOTREADY.
func New(ctx context.Context, opts Options) (*Manager, error) {
	m := &Manager{
		opts:       opts,
		podsDir:    filepath.Join(opts.Root, "pods"),
		runPodsDir: filepath.Join(opts.RunRoot, "pods"),
		nsDir:      filepath.Join(opts.RunRoot, "ns"),
		records:    newRecordStore(filepath.Join(opts.Root, "pods")),
		net:        newNetwork(opts.Network),
		creates:    newCreates(),
		closing:    make(chan struct{}),
		pods:       map[string]*pod{},
		names:      map[Metadata]string{},

		usernsPending: map[string]*userNS{},
	}
	for _, d := range []string{m.podsDir, m.runPodsDir, opts.Network.CacheDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("pod state dir: %w", err)
		}
	}
	if _, err := makePinDir(m.nsDir); err != nil {
		return nil, err
	}
	id, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return nil, fmt.Errorf("boot id: %w", err)
	}
	m.bootID = strings.TrimSpace(string(id))
	if err := m.restore(ctx); err != nil {
		return nil, err
	}
	m.net.info() // logs, at start, which CNI config new pods get
	return m, nil
}

// Close releases the namespace pin directory's mount if no pod needs it.
// Pods stay as they are: they do not depend on berthd running.
func (m *Manager) Close() error {
	m.closeOnce.Do(func() { close(m.closing) })
	return releasePinDir(m.nsDir)
}

// NetworkInfo says which CNI config new pods get, and why none if none.
func (m *Manager) NetworkInfo() NetworkInfo {
	return m.net.info()
}

// Count is the number of pods known, in any state.
func (m *Manager) Count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.pods)
}

// Get returns a copy of the pod whose id is ref or starts with ref. It is
// a not-found error when no pod matches, and invalid when ref is empty or
// matches several.
func (m *Manager) Get(ref string) (*Sandbox, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, err := m.lookupLocked(ref)
	if err != nil {
		return nil, err
	}
	return p.sb.Clone(), nil
}

// List returns copies of every pod RunPodSandbox has finished with, oldest
// first. Pods still being created are left out: nobody has their id yet.
func (m *Manager) List() []*Sandbox {
	m.mu.Lock()
	out := make([]*Sandbox, 0, len(m.pods))
	for _, p := range m.pods {
		if p.sb.State != StateCreating {
			out = append(out, p.sb.Clone())
		}
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// lookupLocked finds a pod by full id or unique id prefix.
func (m *Manager) lookupLocked(ref string) (*pod, error) {
	return ids.Lookup(m.pods, ref, "pod sandbox", nil)
}

// setSandbox publishes a new state of p, and tells it if the pod's
// State changed: every change of a pod passes here, or through Remove.
func (m *Manager) setSandbox(ctx context.Context, p *pod, sb *Sandbox) {
	m.mu.Lock()
	before := p.sb.State
	p.sb = sb
	m.mu.Unlock()
	m.stateChanged(ctx, before, sb)
}

// update is the one way a pod's Status changes: change is applied to a
// copy of it, the pod is recorded with the new status, and only then is
// it published (and a change of State told). A failed change or save
// changes nothing. It returns the pod as recorded. The caller holds p.op.
// Two exceptions publish without recording, each saying why: the status
// RunPodSandbox's steps have built before the pod is READY (makePod),
// and a NOTREADY whose record failed (markNotReady).
func (m *Manager) update(ctx context.Context, p *pod, change func(*Status) error) (*Sandbox, error) {
	sb := m.current(p)
	if err := change(&sb.Status); err != nil {
		return nil, err
	}
	if err := m.save(ctx, p, sb); err != nil {
		return nil, err
	}
	return sb.Clone(), nil
}

// save writes sb as p's record, then publishes it: the one place a pod
// record is written. Its Definition must be the pod's (the first record
// writes the definition; after that only update calls save). The caller
// holds p.op.
func (m *Manager) save(ctx context.Context, p *pod, sb *Sandbox) error {
	defer steptrace.Begin(ctx, "record")()
	m.mu.Lock()
	def := p.sb.Definition
	m.mu.Unlock()
	if sb.Definition != def {
		return fmt.Errorf("pod %s: its definition cannot change once recorded", truncID(def.ID))
	}
	if err := m.writeRecord(p, sb); err != nil {
		return err
	}
	m.setSandbox(ctx, p, sb.Clone()) // sb stays the caller's to change
	return nil
}
