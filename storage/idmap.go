package storage

import (
	cstorage "go.podman.io/storage"
	"go.podman.io/storage/pkg/idtools"
)

// IDMap maps Size ids starting at ContainerID inside a user namespace to
// ids starting at HostID outside it.
type IDMap struct {
	ContainerID uint32
	HostID      uint32
	Size        uint32
}

// RootfsOption changes how CreateContainerRootfs makes a root filesystem.
type RootfsOption func(*cstorage.ContainerOptions)

// WithIDMappings makes a root filesystem for a container in a user
// namespace with these mappings. The image's layers are shown through
// idmapped mounts, so the container's root sees them as its own and not
// one file of them is chowned; only the container's own, new upper
// directory is made owned by the mapped root. Callers must first check
// SupportsIDMappedLayers: without it the store would copy and chown the
// image instead.
func WithIDMappings(uids, gids []IDMap) RootfsOption {
	return func(o *cstorage.ContainerOptions) {
		o.UIDMap = toIDTools(uids)
		o.GIDMap = toIDTools(gids)
	}
}

// SupportsIDMappedLayers reports whether the store's driver mounts a
// container's layers through idmapped mounts (overlay on a kernel and
// filesystem that have them). The vfs driver, and overlay without them,
// would chown copies of the image instead.
func (s *Store) SupportsIDMappedLayers() bool {
	d, err := s.store.GraphDriver()
	if err != nil {
		return false
	}
	probe := []idtools.IDMap{{ContainerID: 0, HostID: 1 << 16, Size: 1 << 16}}
	return d.SupportsShifting(probe, probe)
}

func toIDTools(in []IDMap) []idtools.IDMap {
	out := make([]idtools.IDMap, len(in))
	for i, m := range in {
		out[i] = idtools.IDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)}
	}
	return out
}
