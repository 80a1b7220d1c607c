package server

import (
	"github.com/berth-cri/berth/oci"
	"github.com/berth-cri/berth/sandbox"
)

// ociUserNS is the pod's own user namespace for its containers; nil when
// it uses the node's.
func ociUserNS(sb *sandbox.Sandbox) *oci.UserNS {
	if sb.UserNSPath == "" {
		return nil
	}
	conv := func(in []sandbox.IDMap) []oci.IDMap {
		out := make([]oci.IDMap, len(in))
		for i, m := range in {
			out[i] = oci.IDMap{ContainerID: m.ContainerID, HostID: m.HostID, Size: m.Size}
		}
		return out
	}
	return &oci.UserNS{Path: sb.UserNSPath, UIDs: conv(sb.UIDMappings), GIDs: conv(sb.GIDMappings)}
}
