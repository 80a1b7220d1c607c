package server

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
)

// Metrics are berthd's Prometheus collectors. A nil *Metrics records nothing.
type Metrics struct {
	rpcDuration  *prometheus.HistogramVec
	stepDuration *prometheus.HistogramVec
	PullBytes    prometheus.Counter
}

// NewMetrics registers berthd's collectors in reg, with gauges that ask
// s for its current container and sandbox counts at scrape time.
func NewMetrics(reg prometheus.Registerer, s *Server) *Metrics {
	m := &Metrics{
		rpcDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "berth",
			Name:      "rpc_duration_seconds",
			Help:      "CRI RPC latency by method and gRPC code.",
			Buckets:   prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"method", "code"}),
		stepDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "berth",
			Name:      "operation_step_seconds",
			Help:      "Time of each step of a CRI operation (storage layer, mount, runtime create, CNI ADD, ...); steps of one operation may overlap.",
			Buckets:   prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"operation", "step"}),
		PullBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "berth",
			Name:      "image_pull_bytes_total",
			Help:      "Bytes of image blobs downloaded.",
		}),
	}
	s.img.setPullBytesCounter(m.PullBytes)
	reg.MustRegister(m.rpcDuration, m.stepDuration, m.PullBytes,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "berth", Name: "containers", Help: "Containers known to berthd.",
		}, func() float64 { return float64(s.ctr.count()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "berth", Name: "pod_sandboxes", Help: "Pod sandboxes known to berthd.",
		}, func() float64 { return float64(s.pod.count()) }),
	)
	return m
}

func (m *Metrics) observe(method string, code codes.Code, d time.Duration) {
	if m == nil {
		return
	}
	m.rpcDuration.WithLabelValues(shortMethod(method), code.String()).Observe(d.Seconds())
}

// ObserveStep is steptrace's Recorder: one step of a CRI operation.
func (m *Metrics) ObserveStep(op, step string, d time.Duration) {
	if m == nil {
		return
	}
	m.stepDuration.WithLabelValues(op, step).Observe(d.Seconds())
}
