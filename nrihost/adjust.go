package nrihost

import (
	"fmt"

	"github.com/containerd/nri/pkg/api"
	nrigen "github.com/containerd/nri/pkg/runtime-tools/generate"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	rgen "github.com/opencontainers/runtime-tools/generate"

	"github.com/berth-cri/berth/oci"
)

// adjust applies the plugins' combined adjustment to a container's spec
// with NRI's own spec generator (the one containerd and CRI-O use), and
// holds the result to what this node allows: limits it cannot apply are
// refused, oom_score_adj is clamped as a CRI request's is.
func (h *Host) adjust(spec *rspec.Spec, a *api.ContainerAdjustment) error {
	if a == nil {
		return nil
	}
	base := rgen.NewFromSpec(spec)
	g := nrigen.SpecGenerator(&base,
		nrigen.WithResourceChecker(func(lr *rspec.LinuxResources) error {
			return oci.CheckResources(lr, h.node)
		}),
		nrigen.WithCDIDeviceInjector(func(_ *rspec.Spec, devices []string) error {
			// Berth has no CDI registry to resolve names with.
			return fmt.Errorf("CDI devices %v: Berth does not support CDI device injection", devices)
		}),
	)
	if err := g.Adjust(a); err != nil {
		return err
	}
	if spec.Process != nil && spec.Process.OOMScoreAdj != nil && h.node != nil {
		v := oci.OOMScoreAdj(int64(*spec.Process.OOMScoreAdj), h.node)
		spec.Process.OOMScoreAdj = &v
	}
	return nil
}
