package oci

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ProcessUser is the identity the container's init really has, read from
// its /proc status as CRI-O and containerd report it, in the container's
// own ids (a user-namespaced container's are translated back through its
// mappings). While the container is not running, or its process cannot
// be read, it is the identity the spec gave it.
//
// The pid is only trusted while its parent is still the container's
// monitor (the subreaper that reaps it): a pid reused by another process
// after the container exited has another parent.
func (c *Container) ProcessUser() User {
	r := c.Record()
	if r.State != StateRunning || r.PID <= 0 || r.MonitorPID <= 0 {
		return r.User
	}
	u, err := readProcessUser(fmt.Sprintf("/proc/%d", r.PID), r.MonitorPID)
	if err != nil {
		logFor(r.ID).Debugf("process identity unreadable, reporting the spec's: %v", err)
		return r.User
	}
	return u
}

// readProcessUser reads the real uid, gid and groups of the process at
// dir (/proc/<pid>), which must be a child of parent.
func readProcessUser(dir string, parent int) (User, error) {
	uidMap, err := readIDMap(dir + "/uid_map")
	if err != nil {
		return User{}, err
	}
	gidMap, err := readIDMap(dir + "/gid_map")
	if err != nil {
		return User{}, err
	}
	// Read last: its PPid vouches for the maps read before it too.
	b, err := os.ReadFile(dir + "/status")
	if err != nil {
		return User{}, err
	}
	fields := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok {
			fields[k] = strings.Fields(v)
		}
	}
	if pp := fields["PPid"]; len(pp) != 1 || pp[0] != strconv.Itoa(parent) {
		return User{}, fmt.Errorf("%s: parent %v is not the monitor %d", dir, pp, parent)
	}
	uid, err := firstID(fields["Uid"], uidMap)
	if err != nil {
		return User{}, fmt.Errorf("%s: Uid: %w", dir, err)
	}
	gid, err := firstID(fields["Gid"], gidMap)
	if err != nil {
		return User{}, fmt.Errorf("%s: Gid: %w", dir, err)
	}
	u := User{UID: uid, GID: gid}
	for _, s := range fields["Groups"] {
		g, err := toContainerID(s, gidMap)
		if err != nil {
			return User{}, fmt.Errorf("%s: Groups: %w", dir, err)
		}
		u.Groups = append(u.Groups, g)
	}
	return u, nil
}

// firstID is the real id: the first of a status line's four.
func firstID(f []string, m []IDMap) (uint32, error) {
	if len(f) == 0 {
		return 0, fmt.Errorf("missing")
	}
	return toContainerID(f[0], m)
}

// toContainerID translates an id as berthd sees it into the process's
// user namespace.
func toContainerID(s string, m []IDMap) (uint32, error) {
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, err
	}
	id := uint32(v)
	for _, r := range m {
		if id >= r.HostID && id-r.HostID < r.Size {
			return r.ContainerID + (id - r.HostID), nil
		}
	}
	return 0, fmt.Errorf("id %d is not mapped in the process's user namespace", id)
}

// readIDMap reads a /proc uid_map or gid_map: "inside outside count"
// lines, outside being in the reader's user namespace.
func readIDMap(path string) ([]IDMap, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []IDMap
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		var v [3]uint64
		for i := range f {
			if v[i], err = strconv.ParseUint(f[i], 10, 32); err != nil {
				return nil, fmt.Errorf("%s: %q: %w", path, line, err)
			}
		}
		out = append(out, IDMap{ContainerID: uint32(v[0]), HostID: uint32(v[1]), Size: uint32(v[2])})
	}
	return out, nil
}
