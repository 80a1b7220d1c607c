package sandbox

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/errdefs"
)

// IDMap maps Size ids starting at ContainerID inside the pod's user
// namespace to ids starting at HostID on the node.
type IDMap struct {
	ContainerID uint32 `json:"containerId"`
	HostID      uint32 `json:"hostId"`
	Size        uint32 `json:"size"`
}

// userNS is a pod's own user namespace as RunPodSandbox asked for it.
type userNS struct {
	uids, gids []IDMap
}

var nsUser = nsKind{"user", unix.CLONE_NEWUSER}

// parseUserNS checks a pod's user namespace options. NODE (or none) is
// the host's user namespace: nil. POD is a user namespace of the pod's
// own with exactly one uid and one gid mapping, each mapping container id
// 0 (what kubelet sends and critest checks); the pod's network, IPC and
// UTS namespaces are then its own too, owned by it. CONTAINER and TARGET
// are not modes a pod can have.
func parseUserNS(ns *runtimeapi.NamespaceOption) (*userNS, error) {
	o := ns.GetUsernsOptions()
	if o == nil {
		return nil, nil
	}
	switch o.GetMode() {
	case runtimeapi.NamespaceMode_NODE:
		return nil, nil
	case runtimeapi.NamespaceMode_POD:
	default:
		return nil, errdefs.Invalidf("namespace_options.userns_options.mode %s: a pod's user namespace is POD or NODE", o.GetMode())
	}
	if ns.GetNetwork() != runtimeapi.NamespaceMode_POD || ns.GetIpc() != runtimeapi.NamespaceMode_POD {
		return nil, errdefs.Invalidf("user namespace POD: the pod's network and IPC namespaces must be its own (POD), not the node's")
	}
	if ns.GetPid() == runtimeapi.NamespaceMode_NODE {
		return nil, errdefs.Invalidf("user namespace POD: the host's PID namespace cannot be used with a user namespace")
	}
	uids, err := parseMapping("uids", o.GetUids())
	if err != nil {
		return nil, err
	}
	gids, err := parseMapping("gids", o.GetGids())
	if err != nil {
		return nil, err
	}
	return &userNS{uids: uids, gids: gids}, nil
}

func parseMapping(field string, in []*runtimeapi.IDMapping) ([]IDMap, error) {
	if len(in) != 1 {
		return nil, errdefs.Invalidf("user namespace POD: userns_options.%s: want exactly one mapping, got %d", field, len(in))
	}
	m := in[0]
	switch {
	case m.GetContainerId() != 0:
		return nil, errdefs.Invalidf("user namespace POD: userns_options.%s: the mapping must start at container id 0, not %d", field, m.GetContainerId())
	case m.GetLength() == 0:
		return nil, errdefs.Invalidf("user namespace POD: userns_options.%s: the mapping is empty", field)
	case uint64(m.GetHostId())+uint64(m.GetLength()) > math.MaxUint32:
		return nil, errdefs.Invalidf("user namespace POD: userns_options.%s: host ids %d+%d overflow", field, m.GetHostId(), m.GetLength())
	case m.GetHostId() == 0:
		// The pod's root would be the node's root: no isolation at all.
		return nil, errdefs.Invalidf("user namespace POD: userns_options.%s: the mapping must not include the node's id 0", field)
	}
	return []IDMap{{ContainerID: 0, HostID: m.GetHostId(), Size: m.GetLength()}}, nil
}

// rootUID and rootGID are the node's ids of the pod's root.
func (u *userNS) rootUID() int { return int(u.uids[0].HostID) }
func (u *userNS) rootGID() int { return int(u.gids[0].HostID) }

// pinNamespaces makes the pod's user namespace with its mappings and, owned
// by it, one new namespace of each kind; it pins them all (the user
// namespace as "user") and then runs setup inside the others. On error
// nothing is left pinned.
//
// A multi-threaded process cannot unshare a user namespace, nor enter
// one, so this cannot be done on a throwaway thread as pinNamespaces
// does. A child process is cloned into the new namespaces instead, told
// to stop before it runs anything (PTRACE_TRACEME stops it at its
// execve), its namespaces are pinned, and it is killed; runc's
// libcontainer makes its idmapped-mount namespaces the same way (in an
// internal package, so it cannot be reused). Setup then runs on a
// throwaway thread that joins the pinned network, IPC and UTS namespaces,
// which a thread may do: berthd is root in every user namespace it
// creates.
func (u *userNS) pinNamespaces(dir string, kinds []nsKind, setup func() error) (_ map[string]string, retErr error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pin namespaces: %w", err)
	}
	pins := map[string]string{}
	defer func() {
		if retErr != nil {
			for _, p := range pins {
				unpin(p)
			}
		}
	}()
	err := u.withHolder(kinds, func(pid int) error {
		for _, k := range append([]nsKind{nsUser}, kinds...) {
			pin := filepath.Join(dir, k.name)
			if err := bindNamespace(fmt.Sprintf("/proc/%d/ns/%s", pid, k.name), pin); err != nil {
				return err
			}
			pins[k.name] = pin
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = onThrowawayThread(func() error {
		for _, k := range kinds {
			if err := enterPinned(pins[k.name], k.flag); err != nil {
				return err
			}
		}
		if setup != nil {
			return setup()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return pins, nil
}

// withHolder starts a process in a new user namespace with the pod's
// mappings and new namespaces of kinds owned by it, stopped before it runs
// a single instruction of its own, calls fn with its pid (held: it is our
// unreaped child), then kills and reaps it.
func (u *userNS) withHolder(kinds []nsKind, fn func(pid int) error) error {
	flags := unix.CLONE_NEWUSER
	for _, k := range kinds {
		flags |= k.flag
	}
	// The forking thread is the child's tracer; were it to end, the
	// child would run on. Keep it until the child is dead.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	p, err := os.StartProcess("/proc/self/exe", []string{"berth-userns-holder", "--help"}, &os.ProcAttr{
		Sys: &syscall.SysProcAttr{
			Cloneflags:  uintptr(flags),
			UidMappings: sysMappings(u.uids),
			GidMappings: sysMappings(u.gids),
			Ptrace:      true,
			Pdeathsig:   syscall.SIGKILL,
		},
	})
	if err != nil {
		return fmt.Errorf("create user namespace: %w", err)
	}
	err = fn(p.Pid)
	kerr := p.Kill()
	if _, werr := p.Wait(); werr != nil && kerr == nil {
		kerr = werr
	}
	if kerr != nil && !errors.Is(kerr, os.ErrProcessDone) {
		err = errors.Join(err, fmt.Errorf("user namespace holder: %w", kerr))
	}
	return err
}

// enterPinned moves the calling thread into a pinned namespace.
func enterPinned(pin string, flag int) error {
	fd, err := unix.Open(pin, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("enter namespace %s: %w", pin, err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, flag); err != nil {
		return fmt.Errorf("enter namespace %s: %w", pin, err)
	}
	return nil
}

func sysMappings(in []IDMap) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(in))
	for i, m := range in {
		out[i] = syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)}
	}
	return out
}

// chown gives a file Berth writes for the pod's containers (hostname,
// resolv.conf, hosts) to the pod's root, so that its root owns it as it
// would without a user namespace. Nothing for a pod on the node's user
// namespace.
func (u *userNS) chown(path string) error {
	if u == nil {
		return nil
	}
	if err := os.Lchown(path, u.rootUID(), u.rootGID()); err != nil {
		return fmt.Errorf("give %s to the pod's root: %w", path, err)
	}
	return nil
}

// tmpfsOwner is the tmpfs option that makes the pod's /dev/shm owned by
// the pod's root; empty for a pod on the node's user namespace.
func (u *userNS) tmpfsOwner() string {
	if u == nil {
		return ""
	}
	return fmt.Sprintf(",uid=%d,gid=%d", u.rootUID(), u.rootGID())
}
