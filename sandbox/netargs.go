package sandbox

import (
	"math"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/errdefs"
)

// The pod annotations kubelet uses for traffic shaping (the CNI bandwidth
// plugin's capability).
const (
	ingressBandwidthAnnotation = "kubernetes.io/ingress-bandwidth"
	egressBandwidthAnnotation  = "kubernetes.io/egress-bandwidth"
)

// kubelet's bounds for the bandwidth annotations, in bits per second.
var (
	minBandwidth = resource.MustParse("1k")
	maxBandwidth = resource.MustParse("1P")
)

// cniArgs are the CNI_ARGS kubelet's CNI code always passed; plugins that
// do not know them ignore them (IgnoreUnknown).
func cniArgs(podID string, md Metadata) [][2]string {
	return [][2]string{
		{"IgnoreUnknown", "1"},
		{"K8S_POD_NAMESPACE", md.Namespace},
		{"K8S_POD_NAME", md.Name},
		{"K8S_POD_INFRA_CONTAINER_ID", podID},
		{"K8S_POD_UID", md.UID},
	}
}

// cniCapabilities builds the runtimeConfig capability arguments: host
// port mappings (portmap plugin), the node's pod CIDR as ipRanges
// (host-local), and bandwidth from the pod annotations. libcni passes each
// only to plugins that declare the capability.
func cniCapabilities(cfg *runtimeapi.PodSandboxConfig, podCIDR string) (map[string]any, error) {
	caps := map[string]any{}
	var ports []map[string]any
	for _, pm := range cfg.GetPortMappings() {
		if pm.HostPort == 0 {
			continue // kubelet lists container ports that map to no host port
		}
		if pm.HostPort < 0 || pm.HostPort > 65535 || pm.ContainerPort <= 0 || pm.ContainerPort > 65535 {
			return nil, errdefs.Invalidf("port mapping %d -> %d: ports are 1-65535", pm.HostPort, pm.ContainerPort)
		}
		ports = append(ports, map[string]any{
			"hostPort":      pm.HostPort,
			"containerPort": pm.ContainerPort,
			"protocol":      strings.ToLower(pm.Protocol.String()),
			"hostIP":        pm.HostIp,
		})
	}
	if len(ports) > 0 {
		caps["portMappings"] = ports
	}
	if podCIDR != "" {
		// Dual stack comes as "v4cidr,v6cidr": one range set per family.
		var ranges [][]map[string]string
		for _, c := range strings.Split(podCIDR, ",") {
			if c = strings.TrimSpace(c); c != "" {
				ranges = append(ranges, []map[string]string{{"subnet": c}})
			}
		}
		caps["ipRanges"] = ranges
	}
	bw := map[string]any{}
	for _, a := range []struct{ annotation, rate, burst string }{
		{ingressBandwidthAnnotation, "ingressRate", "ingressBurst"},
		{egressBandwidthAnnotation, "egressRate", "egressBurst"},
	} {
		v, ok := cfg.GetAnnotations()[a.annotation]
		if !ok {
			continue
		}
		q, err := resource.ParseQuantity(v)
		if err != nil {
			return nil, errdefs.Invalidf("annotation %s=%q: %v", a.annotation, v, err)
		}
		if q.Cmp(minBandwidth) < 0 || q.Cmp(maxBandwidth) > 0 {
			return nil, errdefs.Invalidf("annotation %s=%q: must be between %s and %s", a.annotation, v, minBandwidth.String(), maxBandwidth.String())
		}
		// No burst limit of its own, as kubelet and containerd set it.
		bw[a.rate] = q.Value()
		bw[a.burst] = int64(math.MaxUint32)
	}
	if len(bw) > 0 {
		caps["bandwidth"] = bw
	}
	return caps, nil
}
