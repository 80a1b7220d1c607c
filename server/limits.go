package server

import (
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/errdefs"
)

// Kubernetes' own limits on a pod's identity: a name is a DNS subdomain
// (253), a namespace a DNS label (63), a UID a UUID (36; 128 leaves room
// for other clients). Longer values come from no kubelet and would reach
// places with limits of their own (CNI_ARGS in the plugins' environment,
// where one megabyte string fails the exec with an unhelpful error).
const (
	maxPodName      = 253
	maxPodNamespace = 63
	maxPodUID       = 128
)

// checkPodMetadataLimits refuses pod metadata longer than Kubernetes
// allows, before any work.
func checkPodMetadataLimits(md *runtimeapi.PodSandboxMetadata) error {
	for _, f := range []struct {
		field string
		v     string
		max   int
	}{{"name", md.GetName(), maxPodName}, {"namespace", md.GetNamespace(), maxPodNamespace}, {"uid", md.GetUid(), maxPodUID}} {
		if len(f.v) > f.max {
			return errdefs.Invalidf("config.metadata.%s is %d bytes long, over the %d Kubernetes allows", f.field, len(f.v), f.max)
		}
	}
	return nil
}
