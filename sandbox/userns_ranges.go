package sandbox

import (
	"github.com/berth-cri/berth/errdefs"
)

// DefaultUsernsMinHostID is the lowest node id a pod's user namespace may
// map by default: the node's system and login users live below it, and
// kubelet allocates pods' ranges from 65536 on.
const DefaultUsernsMinHostID = 65536

// reserveUserNS checks a new pod's mappings against the node's floor and
// against every other pod's, and holds them until release: two pods
// sharing host ids would share files and processes' identities, the
// isolation the user namespace is for.
func (m *Manager) reserveUserNS(id string, u *userNS) (release func(), err error) {
	if u == nil {
		return func() {}, nil
	}
	floor := m.opts.UsernsMinHostID
	for _, r := range []struct {
		field string
		maps  []IDMap
	}{{"uids", u.uids}, {"gids", u.gids}} {
		for _, x := range r.maps {
			if x.HostID < floor {
				return nil, errdefs.Invalidf("user namespace POD: userns_options.%s: host ids from %d are below the node's floor %d (pod.userns_min_host_id)",
					r.field, x.HostID, floor)
			}
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	check := func(other string, uids, gids []IDMap) error {
		if overlaps(u.uids, uids) || overlaps(u.gids, gids) {
			return errdefs.Invalidf("user namespace POD: the mappings overlap those of pod %s: pods must not share node ids", truncID(other))
		}
		return nil
	}
	for pid, p := range m.pods {
		if err := check(pid, p.sb.UIDMappings, p.sb.GIDMappings); err != nil {
			return nil, err
		}
	}
	for pid, o := range m.usernsPending {
		if err := check(pid, o.uids, o.gids); err != nil {
			return nil, err
		}
	}
	m.usernsPending[id] = u
	return func() {
		m.mu.Lock()
		delete(m.usernsPending, id)
		m.mu.Unlock()
	}, nil
}

// overlaps reports whether two sets of mappings share a node id.
func overlaps(a, b []IDMap) bool {
	for _, x := range a {
		for _, y := range b {
			if uint64(x.HostID) < uint64(y.HostID)+uint64(y.Size) && uint64(y.HostID) < uint64(x.HostID)+uint64(x.Size) {
				return true
			}
		}
	}
	return false
}
