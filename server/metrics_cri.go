package server

import (
	"context"

	"github.com/sirupsen/logrus"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/cgroupdriver"
	"github.com/berth-cri/berth/oci"
	"github.com/berth-cri/berth/sandbox"
	"github.com/berth-cri/berth/stats"
)

// ListMetricDescriptors names the metrics ListPodSandboxMetrics serves:
// cAdvisor's names and labels, which kubelet's /metrics/cadvisor passes
// through.
func (s *Server) ListMetricDescriptors(ctx context.Context, req *runtimeapi.ListMetricDescriptorsRequest) (*runtimeapi.ListMetricDescriptorsResponse, error) {
	var out []*runtimeapi.MetricDescriptor
	for _, d := range stats.Descriptors() {
		out = append(out, &runtimeapi.MetricDescriptor{Name: d.Name, Help: d.Help, LabelKeys: d.Labels})
	}
	return &runtimeapi.ListMetricDescriptorsResponse{Descriptors: out}, nil
}

// ListPodSandboxMetrics reports every pod's metrics and its containers'.
func (s *Server) ListPodSandboxMetrics(ctx context.Context, req *runtimeapi.ListPodSandboxMetricsRequest) (*runtimeapi.ListPodSandboxMetricsResponse, error) {
	var out []*runtimeapi.PodSandboxMetrics
	err := s.eachPodMetrics(ctx, func(pm *runtimeapi.PodSandboxMetrics) error {
		out = append(out, pm)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListPodSandboxMetricsResponse{PodMetrics: out}, nil
}

// eachPodMetrics hands each pod's metrics to fn in turn.
func (s *Server) eachPodMetrics(ctx context.Context, fn func(*runtimeapi.PodSandboxMetrics) error) error {
	for _, sb := range s.pod.mgr.List() {
		if err := ctx.Err(); err != nil {
			return err
		}
		pm, err := s.podMetrics(ctx, sb)
		if err != nil {
			logrus.WithField("pod_sandbox_id", sb.ID).Warnf("metrics: %v", err)
			continue
		}
		if err := fn(pm); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) podMetrics(ctx context.Context, sb *sandbox.Sandbox) (*runtimeapi.PodSandboxMetrics, error) {
	podCg, err := cgroupdriver.Path(sb.CgroupParent)
	if err != nil {
		return nil, err
	}
	smp, err := s.stats.Pod(sb.ID, podCg, sb.NetNSPath)
	if err != nil {
		return nil, err
	}
	ts := smp.Timestamp.UnixNano()
	pm := &runtimeapi.PodSandboxMetrics{
		PodSandboxId: sb.ID,
		Metrics: criMetrics(ts, stats.PodMetrics(stats.Identity{
			ID: podCg, Name: sb.ID, Namespace: sb.Metadata.Namespace, Pod: sb.Metadata.Name,
			Started: sb.CreatedAt,
		}, smp)),
	}
	for _, r := range s.ctr.mgr.List(func(r *oci.Record) bool { return r.PodID == sb.ID }) {
		cg, err := cgroupdriver.ContainerPath(sb.CgroupParent, r.ID)
		if err != nil {
			return nil, err
		}
		cs, err := s.stats.Container(ctx, r.ID, cg)
		if err != nil {
			return nil, err
		}
		pm.ContainerMetrics = append(pm.ContainerMetrics, &runtimeapi.ContainerMetrics{
			ContainerId: r.ID,
			Metrics: criMetrics(cs.Timestamp.UnixNano(), stats.ContainerMetrics(stats.Identity{
				Container: r.Name, ID: cg, Image: r.Image, Name: r.ID,
				Namespace: sb.Metadata.Namespace, Pod: sb.Metadata.Name, Started: r.StartedAt,
			}, cs)),
		})
	}
	return pm, nil
}

// criMetrics converts series; the timestamp is the sample's, which may
// come from the cache.
func criMetrics(ts int64, vs []stats.Value) []*runtimeapi.Metric {
	out := make([]*runtimeapi.Metric, 0, len(vs))
	for _, v := range vs {
		typ := runtimeapi.MetricType_GAUGE
		if v.Counter {
			typ = runtimeapi.MetricType_COUNTER
		}
		out = append(out, &runtimeapi.Metric{
			Name: v.Name, Timestamp: ts, MetricType: typ, LabelValues: v.Labels, Value: u64(v.Value),
		})
	}
	return out
}
