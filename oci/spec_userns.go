package oci

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// IDMap maps Size ids starting at ContainerID inside a user namespace to
// ids starting at HostID outside it.
type IDMap struct {
	ContainerID uint32
	HostID      uint32
	Size        uint32
}

// UserNS is a pod's own user namespace: its pin, which containers join,
// and its mappings.
type UserNS struct {
	Path string
	UIDs []IDMap
	GIDs []IDMap
}

// setUserNamespace puts the container in its pod's user namespace, if
// the pod has one: the container joins it by path (the runtime reads the
// mappings from it), and its root filesystem is opened to the pod's root,
// which the runtime is when it mounts it, and to nobody else (see
// openRootfsToPod). The root filesystem itself is already idmapped (the
// store mounts the image's layers through idmapped mounts).
//
// A container follows its pod: asking for the node's user namespace in a
// pod that has its own, or for the pod's in a pod that has none, or for
// other mappings than the pod's, is invalid.
func setUserNamespace(o *SpecOptions, g *Generated) error {
	pod := o.Pod.UserNS
	if err := checkContainerUserNS(o.Config.GetLinux().GetSecurityContext().GetNamespaceOptions().GetUsernsOptions(), pod); err != nil {
		return err
	}
	if pod == nil {
		return nil
	}
	if o.Config.GetLinux().GetSecurityContext().GetPrivileged() {
		// Its "all devices" and writable /sys would be the node's.
		return invalidf("a privileged container cannot run in a pod with its own user namespace")
	}
	g.Spec.Linux.Namespaces = append(g.Spec.Linux.Namespaces, rspec.LinuxNamespace{Type: rspec.UserNamespace, Path: pod.Path})
	if o.Rootfs != "" {
		if err := openRootfsToPod(o.Rootfs, pod); err != nil {
			return fmt.Errorf("root filesystem of %s: %w", o.ID, err)
		}
	}
	return nil
}

// openRootfsToPod lets the pod's root, which the runtime is when it
// mounts the container's root filesystem (an unprivileged user on the
// node), reach it, and nobody else. An overlay root filesystem is the
// "merged" directory of the container's own layer directory: that
// directory gets the pod's root's group and mode 0710, so its merged/ and
// diff/ are the pod's and the node root's only (CRI-O and round 1 added
// o+x there, opening the container's files to every local user, whose
// paths /proc/self/mountinfo shows). The directories above it only need
// search permission (o+x lists nothing), as before. A root filesystem
// that is not an overlay layer's (vfs) keeps the plain o+x path.
func openRootfsToPod(rootfs string, pod *UserNS) error {
	gid, ok := podRootID(pod.GIDs)
	if filepath.Base(rootfs) != "merged" || !ok {
		return makeSearchable(rootfs)
	}
	layer := filepath.Dir(rootfs)
	if err := makeSearchable(layer); err != nil {
		return err
	}
	if err := os.Lchown(layer, 0, int(gid)); err != nil {
		return fmt.Errorf("give %s to the pod's root group: %w", layer, err)
	}
	if err := os.Chmod(layer, 0o710); err != nil {
		return fmt.Errorf("give %s to the pod's root group: %w", layer, err)
	}
	return nil
}

// podRootID is the node id of the pod's id 0.
func podRootID(maps []IDMap) (uint32, bool) {
	for _, m := range maps {
		if m.ContainerID == 0 && m.Size > 0 {
			return m.HostID, true
		}
	}
	return 0, false
}

// checkContainerUserNS checks a container's user namespace options
// against its pod's user namespace (nil: the node's).
func checkContainerUserNS(opt *runtimeapi.UserNamespace, pod *UserNS) error {
	if opt == nil {
		return nil // a client that says nothing gets the pod's
	}
	switch opt.GetMode() {
	case runtimeapi.NamespaceMode_NODE:
		if pod != nil {
			return invalidf("user namespace NODE: the pod has its own user namespace, which its containers share")
		}
		return nil
	case runtimeapi.NamespaceMode_POD:
		if pod == nil {
			return invalidf("user namespace POD: the pod has no user namespace of its own")
		}
		if !sameMappings(opt.GetUids(), pod.UIDs) || !sameMappings(opt.GetGids(), pod.GIDs) {
			return invalidf("user namespace POD: the container's mappings differ from the pod's")
		}
		return nil
	default:
		return invalidf("user namespace mode %s: a container's user namespace is its pod's (POD) or the node's (NODE)", opt.GetMode())
	}
}

// sameMappings: no mappings (take the pod's) or exactly the pod's.
func sameMappings(req []*runtimeapi.IDMapping, pod []IDMap) bool {
	if len(req) == 0 {
		return true
	}
	return slices.EqualFunc(req, pod, func(a *runtimeapi.IDMapping, b IDMap) bool {
		return a.GetContainerId() == b.ContainerID && a.GetHostId() == b.HostID && a.GetLength() == b.Size
	})
}

// mountIDMappings are the mappings of an idmapped volume. kubelet sets a
// mount's uid and gid mappings, the pod's own, on the volumes of a pod
// with a user namespace that can be idmapped (KEP-127): the runtime then
// mounts it idmapped, so files the node's root owns are the pod's root's
// and what the pod's root writes there is the node's root's, with nothing
// chowned. A mount without mappings is a plain bind mount, on which the
// pod's root is the unprivileged user it is on the node.
func mountIDMappings(pod *UserNS, m *runtimeapi.Mount) (uids, gids []rspec.LinuxIDMapping, err error) {
	if len(m.GetUidMappings()) == 0 && len(m.GetGidMappings()) == 0 {
		return nil, nil, nil
	}
	if pod == nil {
		return nil, nil, errors.New("idmapped mounts are only for pods with their own user namespace")
	}
	if len(m.GetUidMappings()) == 0 || len(m.GetGidMappings()) == 0 {
		return nil, nil, errors.New("an idmapped mount needs both uid and gid mappings")
	}
	conv := func(in []*runtimeapi.IDMapping) []rspec.LinuxIDMapping {
		out := make([]rspec.LinuxIDMapping, len(in))
		for i, x := range in {
			out[i] = rspec.LinuxIDMapping{ContainerID: x.GetContainerId(), HostID: x.GetHostId(), Size: x.GetLength()}
		}
		return out
	}
	uids, gids = conv(m.GetUidMappings()), conv(m.GetGidMappings())
	// An idmapped mount may only give the pod's ids as the pod's user
	// namespace does: a mapping of its own would make the pod's files
	// another pod's, or the node's.
	if err := withinPod("uid", uids, pod.UIDs); err != nil {
		return nil, nil, err
	}
	if err := withinPod("gid", gids, pod.GIDs); err != nil {
		return nil, nil, err
	}
	return uids, gids, nil
}

// withinPod checks that every mapping maps its ids to the node ids the
// pod's own mappings give them.
func withinPod(kind string, maps []rspec.LinuxIDMapping, pod []IDMap) error {
	for _, m := range maps {
		ok := slices.ContainsFunc(pod, func(p IDMap) bool {
			return m.ContainerID >= p.ContainerID &&
				uint64(m.ContainerID)+uint64(m.Size) <= uint64(p.ContainerID)+uint64(p.Size) &&
				uint64(m.HostID) == uint64(p.HostID)+uint64(m.ContainerID-p.ContainerID)
		})
		if !ok || m.Size == 0 {
			return fmt.Errorf("%s mapping %d:%d:%d is not within the pod's user namespace mappings", kind, m.ContainerID, m.HostID, m.Size)
		}
	}
	return nil
}

// makeSearchable adds search (execute) permission for others to every
// directory above p that lacks it, as CRI-O does for a user-namespaced
// container's root filesystem: the runtime mounts the root as the pod's
// root, which is an unprivileged user on the node and could not walk a
// 0700 directory of the node's root. Search alone lists nothing.
func makeSearchable(p string) error {
	for dir := filepath.Dir(filepath.Clean(p)); ; dir = filepath.Dir(dir) {
		st, err := os.Stat(dir)
		if err != nil {
			return err
		}
		if !st.IsDir() {
			return errors.New(dir + " is not a directory")
		}
		if st.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(dir, st.Mode().Perm()|0o001); err != nil {
				return fmt.Errorf("make %s searchable: %w", dir, err)
			}
		}
		if dir == "/" {
			return nil
		}
	}
}

// infraUserNamespace puts a pod's infra process in the pod's user
// namespace, if it has one.
func infraUserNamespace(s *rspec.Spec, pod *Pod, rootfs string) error {
	if pod.UserNS == nil {
		return nil
	}
	s.Linux.Namespaces = append(s.Linux.Namespaces, rspec.LinuxNamespace{Type: rspec.UserNamespace, Path: pod.UserNS.Path})
	return makeSearchable(filepath.Join(rootfs, "pause"))
}
