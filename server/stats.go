package server

import (
	"context"
	"runtime"
	"slices"
	"strings"

	"github.com/opencontainers/cgroups"
	"github.com/sirupsen/logrus"
	"golang.org/x/sync/errgroup"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/cgroupdriver"
	"github.com/berth-cri/berth/errdefs"
	"github.com/berth-cri/berth/oci"
	"github.com/berth-cri/berth/sandbox"
	"github.com/berth-cri/berth/stats"
)

// initStats makes the collector the stats and metrics RPCs read through.
func (s *Server) initStats() {
	s.stats = stats.New(stats.Options{WritableLayer: s.img.store.WritableLayer})
}

// ContainerStats reports one container's CPU, memory, swap, pressure and
// writable layer.
func (s *Server) ContainerStats(ctx context.Context, req *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
	if req.GetContainerId() == "" {
		return nil, errdefs.Invalidf("container_id is empty")
	}
	c, err := s.ctr.get(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	r := c.Record()
	sb, err := s.pod.get(r.PodID)
	if err != nil {
		return nil, err
	}
	cs, err := s.containerStats(ctx, &r, sb)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ContainerStatsResponse{Stats: cs}, nil
}

// ListContainerStats reports the stats of the containers the filter
// selects (id or id prefix, pod id or prefix, labels), exited ones with
// their writable layer only.
func (s *Server) ListContainerStats(ctx context.Context, req *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	out, err := s.listContainerStats(ctx, req.GetFilter())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListContainerStatsResponse{Stats: out}, nil
}

func (s *Server) listContainerStats(ctx context.Context, f *runtimeapi.ContainerStatsFilter) ([]*runtimeapi.ContainerStats, error) {
	recs := s.selectContainers(&runtimeapi.ContainerFilter{
		Id: f.GetId(), PodSandboxId: f.GetPodSandboxId(), LabelSelector: f.GetLabelSelector(),
	})
	pods := s.podsByID()
	out := make([]*runtimeapi.ContainerStats, len(recs))
	err := inParallel(ctx, len(recs), func(i int) error {
		sb := pods[recs[i].PodID]
		if sb == nil {
			return nil // removed meanwhile
		}
		cs, err := s.containerStats(ctx, &recs[i], sb)
		if err != nil {
			// One unreadable container must not cost kubelet the
			// node's summary (and with it eviction): leave it out.
			logrus.WithField("container", recs[i].ID).Warnf("stats: %v", err)
			return nil
		}
		out[i] = cs
		return nil
	})
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(out, func(cs *runtimeapi.ContainerStats) bool { return cs == nil }), nil
}

// inParallel runs fn(0..n-1) on up to GOMAXPROCS goroutines: a stats read
// is a few dozen small cgroupfs reads, kernel work that spreads over the
// node's cores.
func inParallel(ctx context.Context, n int, fn func(i int) error) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i := range n {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			return fn(i)
		})
	}
	return g.Wait()
}

// PodSandboxStats reports one pod: its cgroup, network, processes and
// every container.
func (s *Server) PodSandboxStats(ctx context.Context, req *runtimeapi.PodSandboxStatsRequest) (*runtimeapi.PodSandboxStatsResponse, error) {
	if req.GetPodSandboxId() == "" {
		return nil, errdefs.Invalidf("pod_sandbox_id is empty")
	}
	sb, err := s.pod.get(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	ps, err := s.podStats(ctx, sb)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PodSandboxStatsResponse{Stats: ps}, nil
}

// ListPodSandboxStats reports the pods the filter selects (id or prefix,
// labels).
func (s *Server) ListPodSandboxStats(ctx context.Context, req *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	out, err := s.listPodStats(ctx, req.GetFilter())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListPodSandboxStatsResponse{Stats: out}, nil
}

func (s *Server) listPodStats(ctx context.Context, f *runtimeapi.PodSandboxStatsFilter) ([]*runtimeapi.PodSandboxStats, error) {
	var pods []*sandbox.Sandbox
	for _, sb := range s.pod.mgr.List() {
		if f.GetId() != "" && !strings.HasPrefix(sb.ID, f.GetId()) {
			continue
		}
		if labelsMatch(sb.Config.GetLabels(), f.GetLabelSelector()) {
			pods = append(pods, sb)
		}
	}
	out := make([]*runtimeapi.PodSandboxStats, len(pods))
	err := inParallel(ctx, len(pods), func(i int) error {
		ps, err := s.podStats(ctx, pods[i])
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			logrus.WithField("pod_sandbox_id", pods[i].ID).Warnf("stats: %v", err)
			return nil
		}
		out[i] = ps
		return nil
	})
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(out, func(ps *runtimeapi.PodSandboxStats) bool { return ps == nil }), nil
}

// selectContainers is ListContainers' selection, as records.
func (s *Server) selectContainers(f *runtimeapi.ContainerFilter) []oci.Record {
	var id, podID string
	if f.GetId() != "" {
		c, err := s.ctr.get(f.GetId())
		if err != nil {
			return nil // no such container: none match
		}
		id = c.ID()
	}
	if f.GetPodSandboxId() != "" {
		sb, err := s.pod.get(f.GetPodSandboxId())
		if err != nil {
			return nil
		}
		podID = sb.ID
	}
	return s.ctr.mgr.List(func(r *oci.Record) bool {
		switch {
		case id != "" && r.ID != id,
			podID != "" && r.PodID != podID,
			f.GetState() != nil && r.State.CRI() != f.GetState().GetState():
			return false
		}
		return labelsMatch(r.Labels, f.GetLabelSelector())
	})
}

func (s *Server) podsByID() map[string]*sandbox.Sandbox {
	pods := map[string]*sandbox.Sandbox{}
	for _, sb := range s.pod.mgr.List() {
		pods[sb.ID] = sb
	}
	return pods
}

func (s *Server) containerStats(ctx context.Context, r *oci.Record, sb *sandbox.Sandbox) (*runtimeapi.ContainerStats, error) {
	cg, err := cgroupdriver.ContainerPath(sb.CgroupParent, r.ID)
	if err != nil {
		return nil, err
	}
	smp, err := s.stats.Container(ctx, r.ID, cg)
	if err != nil {
		return nil, err
	}
	return criContainerStats(r, smp), nil
}

func (s *Server) podStats(ctx context.Context, sb *sandbox.Sandbox) (*runtimeapi.PodSandboxStats, error) {
	cg, err := cgroupdriver.Path(sb.CgroupParent)
	if err != nil {
		return nil, err
	}
	smp, err := s.stats.Pod(sb.ID, cg, sb.NetNSPath)
	if err != nil {
		return nil, err
	}
	ps := criPodStats(sb, smp)
	for _, r := range s.ctr.mgr.List(func(r *oci.Record) bool { return r.PodID == sb.ID }) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		cs, err := s.containerStats(ctx, &r, sb)
		if err != nil {
			return nil, err
		}
		ps.Linux.Containers = append(ps.Linux.Containers, cs)
	}
	return ps, nil
}

// forgetStats drops the cached samples of a container or pod that is gone.
func (s *Server) forgetStats(id string) {
	if s.stats != nil {
		s.stats.Forget(id)
	}
}

func u64(v uint64) *runtimeapi.UInt64Value { return &runtimeapi.UInt64Value{Value: v} }

func optU64(v *uint64) *runtimeapi.UInt64Value {
	if v == nil {
		return nil
	}
	return u64(*v)
}

func criContainerStats(r *oci.Record, smp *stats.ContainerSample) *runtimeapi.ContainerStats {
	cs := &runtimeapi.ContainerStats{
		Attributes: &runtimeapi.ContainerAttributes{
			Id:          r.ID,
			Metadata:    &runtimeapi.ContainerMetadata{Name: r.Name, Attempt: r.Attempt},
			Labels:      r.Labels,
			Annotations: r.Annotations,
		},
	}
	ts := smp.Timestamp.UnixNano()
	cs.Cpu = criCPU(ts, smp.CPU)
	cs.Memory = criMemory(ts, smp.Memory)
	if smp.Memory != nil && smp.Memory.Swap != nil {
		cs.Swap = &runtimeapi.SwapUsage{
			Timestamp:          ts,
			SwapUsageBytes:     u64(smp.Memory.Swap.Usage),
			SwapAvailableBytes: optU64(smp.Memory.Swap.Available),
		}
	}
	if smp.IOPSI != nil {
		cs.Io = &runtimeapi.IoUsage{Timestamp: ts, Psi: criPSI(smp.IOPSI)}
	}
	if d := smp.Disk; d != nil {
		cs.WritableLayer = &runtimeapi.FilesystemUsage{
			Timestamp:  d.Timestamp.UnixNano(),
			FsId:       &runtimeapi.FilesystemIdentifier{Mountpoint: d.Mountpoint},
			UsedBytes:  u64(d.UsedBytes),
			InodesUsed: u64(d.Inodes),
		}
	}
	return cs
}

func criPodStats(sb *sandbox.Sandbox, smp *stats.PodSample) *runtimeapi.PodSandboxStats {
	ts := smp.Timestamp.UnixNano()
	l := &runtimeapi.LinuxPodSandboxStats{
		Cpu:    criCPU(ts, smp.CPU),
		Memory: criMemory(ts, smp.Memory),
	}
	if smp.Processes != nil {
		l.Process = &runtimeapi.ProcessUsage{Timestamp: ts, ProcessCount: u64(*smp.Processes)}
	}
	if smp.IOPSI != nil {
		l.Io = &runtimeapi.IoUsage{Timestamp: ts, Psi: criPSI(smp.IOPSI)}
	}
	if n := smp.Network; n != nil {
		l.Network = &runtimeapi.NetworkUsage{Timestamp: n.Timestamp.UnixNano()}
		for _, i := range n.Interfaces {
			iu := &runtimeapi.NetworkInterfaceUsage{
				Name:     i.Name,
				RxBytes:  u64(i.RxBytes),
				RxErrors: u64(i.RxErrors),
				TxBytes:  u64(i.TxBytes),
				TxErrors: u64(i.TxErrors),
			}
			// kubelet's default interface is eth0, as CNI names it.
			if i.Name == defaultInterface && l.Network.DefaultInterface == nil {
				l.Network.DefaultInterface = iu
			} else {
				l.Network.Interfaces = append(l.Network.Interfaces, iu)
			}
		}
		if l.Network.DefaultInterface == nil && len(l.Network.Interfaces) > 0 {
			l.Network.DefaultInterface, l.Network.Interfaces = l.Network.Interfaces[0], l.Network.Interfaces[1:]
		}
	}
	return &runtimeapi.PodSandboxStats{
		Attributes: &runtimeapi.PodSandboxAttributes{
			Id:          sb.ID,
			Metadata:    podMetadata(sb),
			Labels:      sb.Config.GetLabels(),
			Annotations: sb.Config.GetAnnotations(),
		},
		Linux: l,
	}
}

// defaultInterface is the pod interface CNI plugins are asked to make.
const defaultInterface = "eth0"

func criCPU(ts int64, c *stats.CPU) *runtimeapi.CpuUsage {
	if c == nil {
		return nil
	}
	return &runtimeapi.CpuUsage{
		Timestamp:            ts,
		UsageCoreNanoSeconds: u64(c.UsageNanos),
		UsageNanoCores:       optU64(c.NanoCores),
		Psi:                  criPSI(c.PSI),
	}
}

func criMemory(ts int64, m *stats.Memory) *runtimeapi.MemoryUsage {
	if m == nil {
		return nil
	}
	return &runtimeapi.MemoryUsage{
		Timestamp:       ts,
		WorkingSetBytes: u64(m.WorkingSet),
		AvailableBytes:  optU64(m.Available),
		UsageBytes:      u64(m.Usage),
		RssBytes:        u64(m.RSS),
		PageFaults:      u64(m.PageFaults),
		MajorPageFaults: u64(m.MajorPageFaults),
		Psi:             criPSI(m.PSI),
	}
}

// criPSI converts pressure stall information; the kernel's totals are
// microseconds, the CRI's nanoseconds.
func criPSI(p *cgroups.PSIStats) *runtimeapi.PsiStats {
	if p == nil {
		return nil
	}
	data := func(d cgroups.PSIData) *runtimeapi.PsiData {
		return &runtimeapi.PsiData{Total: d.Total * 1000, Avg10: d.Avg10, Avg60: d.Avg60, Avg300: d.Avg300}
	}
	return &runtimeapi.PsiStats{Full: data(p.Full), Some: data(p.Some)}
}
