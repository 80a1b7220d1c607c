package oci

import (
	"context"
	"fmt"
	"golang.org/x/sync/semaphore"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/sirupsen/logrus"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/ids"
	"github.com/berth-cri/berth/inflight"
	"github.com/berth-cri/berth/record"
)

// Options configure a Manager.
type Options struct {
	// Root and RunRoot are berthd's state and run roots.
	Root    string
	RunRoot string
	// MonitorPath is the berth-monitor binary.
	MonitorPath string
	Host        *Host
	// Rootfs is the store of the containers' root filesystems.
	Rootfs Rootfs
	// ExecSyncMaxOutput caps the output an ExecSync returns, stdout and
	// stderr together, and what each stream writes to the run root.
	ExecSyncMaxOutput int
	// ExecSyncOutputBudget bounds the ExecSync output held in berthd's
	// memory at once, every call together (DefaultExecSyncOutputBudget
	// when 0).
	ExecSyncOutputBudget int64
	// Notifier hears of every step of every CRI container; nil for none.
	Notifier Notifier
}

// Manager owns every container: their records, their monitors and the
// watchers that record their exits.
type Manager struct {
	opts     Options
	dir      string // <root>/containers
	records  *record.Store
	runDir   string // <runroot>/containers
	exitsDir string // <runroot>/exits

	// execOut is the node's ExecSync output budget, in bytes.
	execOut *semaphore.Weighted
	// creates are the Create calls in flight (kubelet's retries join
	// them).
	creates *inflight.Calls[createKey, *runtimeapi.ContainerConfig]

	mu   sync.RWMutex
	ctrs map[string]*Container
	// unwatched are the CRI containers restored whose exits Watch is to
	// watch.
	unwatched []*Container
	// kept are containers whose records could not be used at start:
	// left alone, never swept.
	kept map[string]bool

	// ctx ends the exit watchers on Close; containers keep running.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewManager creates the directories and restores every container from
// disk: running ones are adopted, exits that happened while berthd was
// down are recorded, and half-created ones are torn down. The steps found
// (exits, and starts berthd did not record) are returned, in the order
// found, not told to the notifier: the caller tells them when it can,
// then calls Watch.
func NewManager(ctx context.Context, o Options) (*Manager, []Change, error) {
	if o.ExecSyncOutputBudget <= 0 {
		o.ExecSyncOutputBudget = DefaultExecSyncOutputBudget
	}
	m := &Manager{
		opts:     o,
		execOut:  semaphore.NewWeighted(o.ExecSyncOutputBudget),
		creates:  newCreates(),
		dir:      filepath.Join(o.Root, "containers"),
		runDir:   filepath.Join(o.RunRoot, "containers"),
		exitsDir: filepath.Join(o.RunRoot, "exits"),
		ctrs:     map[string]*Container{},
		kept:     map[string]bool{},
	}
	for _, d := range []string{m.dir, m.runDir, m.exitsDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	m.records = newRecordStore(m.dir)
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.sweepCheckpointStages()
	found, err := m.restore(ctx)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	return m, found, nil
}

// Watch starts watching the exits of the CRI containers NewManager
// restored (infra containers are watched from the start: pods restore
// through them). Until then an exit of one is not recorded, so no step
// of it reaches the notifier before the caller told the steps NewManager
// returned.
func (m *Manager) Watch() {
	m.mu.Lock()
	cs := m.unwatched
	m.unwatched = nil
	m.mu.Unlock()
	for _, c := range cs {
		m.watch(c)
	}
}

// Close stops the exit watchers. Containers and monitors keep running.
func (m *Manager) Close() error {
	m.cancel()
	m.wg.Wait()
	return nil
}

func (m *Manager) paths(id string) paths {
	return paths{
		store: m.records,
		dir:   filepath.Join(m.dir, id),
		run:   filepath.Join(m.runDir, id),
		exit:  filepath.Join(m.exitsDir, id),
	}
}

// newContainer is the one constructor of a Container: rec is its
// record as created or as loaded.
func (m *Manager) newContainer(rec Record) *Container {
	return &Container{rec: rec, exited: make(chan struct{}), paths: m.paths(rec.ID)}
}

// Get finds a container by id or unique id prefix. Infra containers are
// found only by their full id.
func (m *Manager) Get(idOrPrefix string) (*Container, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return ids.Lookup(m.ctrs, idOrPrefix, "container", func(c *Container) bool { return !c.rec.Infra })
}

// List returns copies of every CRI container's record (no infra), oldest
// first, that keep(r) accepts (nil keeps all).
func (m *Manager) List(keep func(*Record) bool) []Record {
	m.mu.RLock()
	ctrs := make([]*Container, 0, len(m.ctrs))
	for _, c := range m.ctrs {
		ctrs = append(ctrs, c)
	}
	m.mu.RUnlock()
	out := make([]Record, 0, len(ctrs))
	for _, c := range ctrs {
		r := c.Record()
		if r.Infra || (keep != nil && !keep(&r)) {
			continue
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out
}

// Count is the number of CRI containers.
func (m *Manager) Count() int {
	return len(m.List(nil))
}

// All returns every container, infra included.
func (m *Manager) All() []*Container {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]*Container, 0, len(m.ctrs))
	for _, c := range m.ctrs {
		out = append(out, c)
	}
	return out
}

// PodContainers returns the containers of a pod, infra included.
func (m *Manager) PodContainers(podID string) []*Container {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []*Container
	for _, c := range m.ctrs {
		if c.rec.PodID == podID {
			out = append(out, c)
		}
	}
	return out
}

func (m *Manager) add(c *Container) {
	m.mu.Lock()
	m.ctrs[c.rec.ID] = c
	m.mu.Unlock()
}

func (m *Manager) forget(id string) {
	m.mu.Lock()
	delete(m.ctrs, id)
	m.mu.Unlock()
}

func logFor(id string) *logrus.Entry {
	return logrus.WithField("container", id)
}
