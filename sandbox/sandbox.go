package sandbox

import (
	"encoding/json"
	"slices"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// State is where a pod is in its life.
type State string

const (
	// StateCreating: RunPodSandbox is still working on the pod. A pod
	// found in this state when berthd starts was cut short by a crash and
	// is torn down.
	StateCreating State = "creating"
	// StateReady: namespaces pinned, network attached, files written.
	StateReady State = "ready"
	// StateNotReady: stopped, or its namespaces did not survive a reboot.
	// The record stays until RemovePodSandbox.
	StateNotReady State = "notready"
)

// Metadata names a pod the way kubelet does. It is reserved while the pod
// exists: a second pod with the same Metadata is refused. It is a map key
// as it is (comparable), never joined into a string.
type Metadata struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	UID       string `json:"uid"`
	Attempt   uint32 `json:"attempt"`
}

// Sandbox is one pod sandbox as the rest of Berth sees it. Values handed
// out by the Manager are copies: changing one changes nothing, and every
// change goes through a Manager method. Paths are absolute.
//
// Its Definition is fixed when RunPodSandbox begins, before the first
// record; its Status changes only through Manager.update, which records
// the change before publishing it. Both are one flat JSON record on disk
// (sandbox/record.go): the split is in the code, not the format.
type Sandbox struct {
	Definition
	Status
}

// Definition is what RunPodSandbox decides about a pod before it makes
// anything; it never changes afterwards.
type Definition struct {
	// ID is 64 lowercase hex characters, random.
	ID string `json:"id"`
	// Metadata is the request's name, namespace, uid and attempt.
	Metadata Metadata `json:"metadata"`
	// Config is the PodSandboxConfig as RunPodSandbox received it: labels,
	// annotations, hostname, DNS, port mappings, log directory, the Linux
	// security context (namespace options, sysctls, ...), cgroup parent.
	// It is shared between copies and must be treated as read-only.
	Config *runtimeapi.PodSandboxConfig `json:"-"`
	// RuntimeHandler is the handler the pod runs with, never empty: the
	// configured default replaces an empty request.
	RuntimeHandler string `json:"runtimeHandler"`
	// CreatedAt is when RunPodSandbox started on the pod.
	CreatedAt time.Time `json:"createdAt"`

	// Hostname is the pod's hostname: the request's, or the host's for a
	// host-network pod that names none.
	Hostname string `json:"hostname"`

	// Infra says the pod needs an infra process: a shared (POD) PID
	// namespace, or a VM runtime handler. The Manager decides it.
	Infra bool `json:"infra,omitempty"`

	// ResolvConfPath, HostsPath and HostnamePath are files for the
	// containers to bind-mount at /etc/resolv.conf, /etc/hosts and
	// /etc/hostname.
	ResolvConfPath string `json:"resolvConfPath"`
	HostsPath      string `json:"hostsPath"`
	HostnamePath   string `json:"hostnamePath"`

	// CgroupParent is the pod's cgroup, a cgroupfs path (e.g.
	// /kubepods/besteffort/pod<uid> or <runtime.cgroup_parent>/pod-<id>) or a
	// systemd slice (kubepods-besteffort-pod<uid>.slice); see cgroupdriver.
	// The pod's containers go under it.
	CgroupParent string `json:"cgroupParent"`

	// Dir holds the pod's record and files; RunDir its run-time mounts.
	Dir    string `json:"dir"`
	RunDir string `json:"runDir"`
}

// Status is what the pod's steps make and undo: its state, pinned
// namespaces, /dev/shm, network and infra.
type Status struct {
	// State is creating, ready or notready.
	State State `json:"state"`

	// NetNSPath, IPCNSPath and UTSNSPath are the pinned namespaces the
	// pod's containers join, empty where the pod uses the host's (and
	// after StopPodSandbox, which unpins them).
	NetNSPath string `json:"netnsPath,omitempty"`
	IPCNSPath string `json:"ipcnsPath,omitempty"`
	UTSNSPath string `json:"utsnsPath,omitempty"`
	// UserNSPath is the pod's own user namespace (pinned), which owns the
	// three above; empty for the node's. UIDMappings and GIDMappings are
	// its mappings (one each, from container id 0).
	UserNSPath  string  `json:"usernsPath,omitempty"`
	UIDMappings []IDMap `json:"uidMappings,omitempty"`
	GIDMappings []IDMap `json:"gidMappings,omitempty"`

	// InfraPID is the infra process's pid once started, else 0. For
	// people only: nothing finds the process by it.
	InfraPID int `json:"infraPid,omitempty"`
	// PIDNSPath is the pin of the infra's PID namespace (bind-mounted
	// like the others), which the pod's containers join; empty without
	// an infra, and once stopped.
	PIDNSPath string `json:"pidnsPath,omitempty"`

	// ShmPath is the pod's /dev/shm: a tmpfs of the configured size, or
	// the host's /dev/shm for a host-IPC pod. Empty once stopped.
	ShmPath string `json:"shmPath,omitempty"`

	// IPs are the pod's addresses from CNI, primary first (IPv4 before
	// IPv6 on dual stack). Empty for host-network pods and once stopped.
	IPs []string `json:"ips,omitempty"`
	// NetworkName is the CNI network the pod is attached to.
	NetworkName string `json:"networkName,omitempty"`
	// NetworkResult is the CNI result of ADD as the plugins returned it.
	NetworkResult json.RawMessage `json:"networkResult,omitempty"`
}

// Clone returns a copy that shares nothing mutable with s (Config is
// read-only and shared).
func (s *Sandbox) Clone() *Sandbox {
	c := *s
	c.IPs = slices.Clone(s.IPs)
	c.NetworkResult = slices.Clone(s.NetworkResult)
	c.UIDMappings, c.GIDMappings = slices.Clone(s.UIDMappings), slices.Clone(s.GIDMappings)
	return &c
}

// NamespaceOptions returns the request's namespace options, never nil.
func (s *Sandbox) NamespaceOptions() *runtimeapi.NamespaceOption {
	return namespaceOptions(s.Config)
}

func namespaceOptions(cfg *runtimeapi.PodSandboxConfig) *runtimeapi.NamespaceOption {
	if o := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions(); o != nil {
		return o
	}
	return &runtimeapi.NamespaceOption{}
}
