package stats

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opencontainers/cgroups"
	cgroupsfs "github.com/opencontainers/cgroups/fs"
	"github.com/opencontainers/cgroups/fs2"
)

// unlimited: a v1 "no limit" is PAGE_COUNTER_MAX pages (near 2^63), a
// v2 one "max" (2^64-1); any limit beyond this is none.
const unlimited = 1 << 62

// v1Subsystems are the hierarchies a v1 reading needs.
var v1Subsystems = []string{"blkio", "cpu", "cpuacct", "memory", "pids"}

// cgroupReader reads one cgroup through opencontainers/cgroups, only the
// controllers the CRI's stats use.
type cgroupReader struct {
	mgr   cgroups.Manager
	v2    bool
	ctrls cgroups.Controller
	// dirs are the cgroup's directories: one gone means the cgroup is.
	dirs []string
	// swap: the kernel accounts swap for this cgroup.
	swap bool
	// paths are the cgroup's directory by v1 subsystem; for v2 every
	// controller's is the one directory.
	paths map[string]string
}

// dir is the cgroup's directory of controller ctrl ("" when absent).
func (r *cgroupReader) dir(ctrl string) string {
	if r.v2 {
		return r.dirs[0]
	}
	return r.paths[ctrl]
}

// newCgroupReader prepares the reading of cgroup path (a cgroupfs path
// such as /kubepods/pod<uid>/berth-<id>) under root, the cgroup
// filesystem. The real root (/sys/fs/cgroup) has the library find each
// v1 hierarchy's mount; another root (a test's fake tree) is laid out as
// <root>/<subsystem>/<path> for v1 and <root>/<path> for v2.
func newCgroupReader(root string, v2 bool, path string) (*cgroupReader, error) {
	r := &cgroupReader{v2: v2}
	if v2 {
		dir := filepath.Join(root, path)
		mgr, err := fs2.NewManager(&cgroups.Cgroup{Path: path, Resources: &cgroups.Resources{}}, dir)
		if err != nil {
			return nil, fmt.Errorf("cgroup %s: %w", path, err)
		}
		r.mgr, r.dirs = mgr, []string{dir}
		r.paths = map[string]string{"": dir}
		r.ctrls = cgroups.CPU | cgroups.Memory | cgroups.Pids | cgroups.IO
		r.swap = exists(filepath.Join(dir, "memory.swap.current"))
		return r, nil
	}
	var paths map[string]string
	if root != defaultCgroupRoot {
		paths = map[string]string{}
		for _, s := range v1Subsystems {
			paths[s] = filepath.Join(root, s, path)
		}
	}
	mgr, err := cgroupsfs.NewManager(&cgroups.Cgroup{Path: path, Resources: &cgroups.Resources{}}, paths)
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", path, err)
	}
	// Only what the stats use: hugetlb costs a dozen files.
	all := mgr.GetPaths()
	paths = map[string]string{}
	for _, s := range v1Subsystems {
		if p, ok := all[s]; ok {
			paths[s] = p
		}
	}
	if mgr, err = cgroupsfs.NewManager(&cgroups.Cgroup{Path: path, Resources: &cgroups.Resources{}}, paths); err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", path, err)
	}
	r.mgr, r.paths = mgr, paths
	r.ctrls = cgroups.CPU | cgroups.Memory | cgroups.Pids | cgroups.IO
	for _, s := range []string{"cpuacct", "memory"} {
		if p := paths[s]; p != "" {
			r.dirs = append(r.dirs, p)
		}
	}
	r.swap = exists(filepath.Join(paths["memory"], "memory.memsw.usage_in_bytes"))
	return r, nil
}

const defaultCgroupRoot = "/sys/fs/cgroup"

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// errGone: the cgroup is not there (not made yet, or removed on exit).
var errGone = errors.New("cgroup is gone")

// read returns the cgroup's statistics, or errGone. The directories are
// checked first: v1 readers skip a missing hierarchy without an error,
// which would read a removed cgroup as an idle one.
func (r *cgroupReader) read() (*cgroups.Stats, error) {
	if len(r.dirs) == 0 {
		return nil, errGone
	}
	for _, d := range r.dirs {
		if _, err := os.Stat(d); errors.Is(err, fs.ErrNotExist) {
			return nil, errGone
		}
	}
	st, err := r.mgr.Stats(&cgroups.StatsOptions{Controllers: r.ctrls})
	if err != nil {
		for _, d := range r.dirs {
			if _, serr := os.Stat(d); errors.Is(serr, fs.ErrNotExist) {
				return nil, errGone // removed while reading
			}
		}
		return nil, err
	}
	return st, nil
}

// sample converts the library's statistics to kubelet's terms.
func (r *cgroupReader) sample(st *cgroups.Stats) Sample {
	s := Sample{
		CPU: &CPU{
			UsageNanos:       st.CpuStats.CpuUsage.TotalUsage,
			UserNanos:        st.CpuStats.CpuUsage.UsageInUsermode,
			SystemNanos:      st.CpuStats.CpuUsage.UsageInKernelmode,
			Periods:          st.CpuStats.ThrottlingData.Periods,
			ThrottledPeriods: st.CpuStats.ThrottlingData.ThrottledPeriods,
			ThrottledNanos:   st.CpuStats.ThrottlingData.ThrottledTime,
			PSI:              st.CpuStats.PSI,
		},
		Memory:  r.memory(&st.MemoryStats),
		IOPSI:   st.BlkioStats.PSI,
		Devices: devices(&st.BlkioStats),
		Spec:    r.spec(),
	}
	if r.v2 || st.PidsStats.Current > 0 || st.PidsStats.Limit > 0 {
		n := st.PidsStats.Current
		s.Processes = &n
		s.Tasks = &Tasks{Threads: n, ThreadsMax: st.PidsStats.Limit}
		r.files(s.Tasks)
	}
	if n, ok := r.oomKills(); ok {
		s.OOMKills = &n
	}
	return s
}

// memory reads memory.stat by its v1 (hierarchical "total_" keys) or v2
// names.
func (r *cgroupReader) memory(ms *cgroups.MemoryStats) *Memory {
	key := func(v1, v2 string) uint64 {
		if r.v2 {
			return ms.Stats[v2]
		}
		return ms.Stats[v1]
	}
	m := &Memory{
		Usage:           ms.Usage.Usage,
		RSS:             key("total_rss", "anon"),
		Cache:           key("total_cache", "file"),
		MappedFile:      key("total_mapped_file", "file_mapped"),
		KernelUsage:     ms.KernelUsage.Usage,
		MaxUsage:        ms.Usage.MaxUsage,
		Failcnt:         ms.Usage.Failcnt,
		PageFaults:      key("total_pgfault", "pgfault"),
		MajorPageFaults: key("total_pgmajfault", "pgmajfault"),
		PSI:             ms.PSI,
	}
	if r.v2 {
		// v2 has no kernel-usage file: the slab and stacks are in
		// memory.stat.
		m.KernelUsage = ms.Stats["kernel"]
	}
	// kubelet's working set: what cannot be dropped on memory pressure.
	inactive := key("total_inactive_file", "inactive_file")
	if m.Usage > inactive {
		m.WorkingSet = m.Usage - inactive
	}
	if l := ms.Usage.Limit; l > 0 && l < unlimited {
		m.Limit = l
		a := uint64(0)
		if l > m.WorkingSet {
			a = l - m.WorkingSet
		}
		m.Available = &a
	}
	if r.swap {
		m.Swap = r.swapOf(ms)
	}
	return m
}

// swapOf is swap alone: v2 reports it as such, v1 as memory+swap.
func (r *cgroupReader) swapOf(ms *cgroups.MemoryStats) *Swap {
	sw := &Swap{}
	var limit uint64
	if r.v2 {
		sw.Usage, limit = ms.SwapOnlyUsage.Usage, ms.SwapOnlyUsage.Limit
	} else {
		if ms.SwapUsage.Usage > ms.Usage.Usage {
			sw.Usage = ms.SwapUsage.Usage - ms.Usage.Usage
		}
		if ms.SwapUsage.Limit < unlimited && ms.Usage.Limit < unlimited && ms.SwapUsage.Limit > ms.Usage.Limit {
			limit = ms.SwapUsage.Limit - ms.Usage.Limit
		} else {
			limit = ms.SwapUsage.Limit
		}
	}
	if limit > 0 && limit < unlimited {
		sw.Limit = limit
		a := uint64(0)
		if limit > sw.Usage {
			a = limit - sw.Usage
		}
		sw.Available = &a
	}
	return sw
}
