package oci

import (
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// setNamespaces joins the pod's network, IPC and UTS namespaces by path
// (none where the pod uses the host's), gives the container its own mount
// namespace, and picks its PID namespace from the PID mode: its own
// (CONTAINER), the pod's infra (POD), the host's (NODE) or another
// container's (TARGET).
func setNamespaces(o *SpecOptions, g *Generated) error {
	nsOpts := o.Config.GetLinux().GetSecurityContext().GetNamespaceOptions()
	ns := []rspec.LinuxNamespace{{Type: rspec.MountNamespace}}
	for _, j := range []struct {
		typ  rspec.LinuxNamespaceType
		path string
	}{
		{rspec.NetworkNamespace, o.Pod.NetNSPath},
		{rspec.IPCNamespace, o.Pod.IPCNSPath},
		{rspec.UTSNamespace, o.Pod.UTSNSPath},
	} {
		if j.path != "" {
			ns = append(ns, rspec.LinuxNamespace{Type: j.typ, Path: j.path})
		}
	}
	if o.Pod.UTSNSPath == "" {
		// The host's UTS namespace: setting a hostname would rename the
		// node.
		g.Spec.Hostname = ""
	}

	switch mode := nsOpts.GetPid(); mode {
	case runtimeapi.NamespaceMode_CONTAINER:
		ns = append(ns, rspec.LinuxNamespace{Type: rspec.PIDNamespace})
	case runtimeapi.NamespaceMode_POD:
		// POD is the zero value, so clients that say nothing ask for it.
		// A pod without a shared PID namespace has no infra to join: the
		// pod's PID namespace is then per container, as in CRI-O.
		ns = append(ns, rspec.LinuxNamespace{Type: rspec.PIDNamespace, Path: o.Pod.PIDNSPath})
	case runtimeapi.NamespaceMode_NODE:
		// No entry: the host's PID namespace.
	case runtimeapi.NamespaceMode_TARGET:
		if o.TargetPIDNS == "" {
			return invalidf("PID mode TARGET: target container %q is not running", nsOpts.GetTargetId())
		}
		ns = append(ns, rspec.LinuxNamespace{Type: rspec.PIDNamespace, Path: o.TargetPIDNS})
	default:
		return invalidf("PID namespace mode %v is not known", mode)
	}
	if o.Host.CgroupV2 {
		// On cgroup v2 the container sees its own cgroup as the root, as
		// containerd and CRI-O do.
		ns = append(ns, rspec.LinuxNamespace{Type: rspec.CgroupNamespace})
	}
	g.Spec.Linux.Namespaces = ns
	return nil
}

// sharesPIDNamespace reports whether a spec's PID namespace is not the
// container's own, so killing its init does not kill the rest.
func sharesPIDNamespace(s *rspec.Spec) bool {
	if s == nil || s.Linux == nil {
		return false
	}
	for _, n := range s.Linux.Namespaces {
		if n.Type == rspec.PIDNamespace {
			return n.Path != ""
		}
	}
	return true // no entry: the host's
}
