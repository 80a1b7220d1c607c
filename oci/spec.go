package oci

import (
	"encoding/json"
	"fmt"
	"strings"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/cgroupdriver"
	"github.com/berth-cri/berth/errdefs"
)

// ImageConfig is the part of an image's config a container's spec uses.
type ImageConfig struct {
	Entrypoint []string
	Cmd        []string
	Env        []string
	User       string
	WorkingDir string
	StopSignal string
}

// Pod is what a container takes from its pod sandbox. Namespace paths are
// empty where the pod uses the host's namespace.
type Pod struct {
	ID        string
	Name      string
	Namespace string
	UID       string
	Hostname  string

	NetNSPath string
	IPCNSPath string
	UTSNSPath string
	// PIDNSPath is the infra's PID namespace, for containers in POD PID
	// mode; empty when the pod has no shared PID namespace.
	PIDNSPath string
	// UserNS is the pod's own user namespace; nil for the node's.
	UserNS *UserNS

	ResolvConfPath string
	HostsPath      string
	HostnamePath   string
	// ShmPath is mounted at /dev/shm; empty gives the container a
	// private tmpfs.
	ShmPath string

	// CgroupParent is the pod's cgroup (a cgroupfs path or a systemd
	// slice, see cgroupdriver); containers go below it.
	CgroupParent string
	// LogDirectory is the pod's CRI log directory; a container's
	// log_path is relative to it.
	LogDirectory string
}

// SpecOptions is everything a container's spec is generated from.
type SpecOptions struct {
	ID     string
	Config *runtimeapi.ContainerConfig
	Pod    *Pod
	Image  ImageConfig
	// ImageName is the image as the user named it (an annotation).
	ImageName string
	// Rootfs is the mounted root filesystem: the image's /etc/passwd and
	// /etc/group are read from it.
	Rootfs string
	// TargetPIDNS is the target container's PID namespace, for PID mode
	// TARGET.
	TargetPIDNS string
	Host        *Host
	// AllowedAnnotations are the runtime handler's allowed_annotations:
	// the only request annotations the spec carries (see
	// config.RuntimeHandler).
	AllowedAnnotations []string
	// CgroupWritable is the runtime handler's cgroup_writable (see
	// config.RuntimeHandler and setCgroupDelegation).
	CgroupWritable bool
	// ImageVolumes are the request's image mounts (Mount.image), made
	// ready by the image store, by container path.
	ImageVolumes map[string]ImageVolume
}

// ImageVolume is an image mounted for the container, ready to bind.
type ImageVolume struct {
	// HostPath is the image's root (or the sub path asked for) on the host.
	HostPath string
	// Image and ImageRef are what ContainerStatus reports for the mount.
	Image    string
	ImageRef string
}

// Generated is a spec and what was decided while building it that the
// container record keeps.
type Generated struct {
	Spec *rspec.Spec
	User User
	// Mounts are the CRI mounts as applied (host paths resolved).
	Mounts []Mount
	// Delegation is the container's cgroup to hand to its user (see
	// setCgroupDelegation); nil when it is not delegated.
	Delegation *Delegation
}

// Mount is a CRI mount as the container got it.
type Mount struct {
	ContainerPath  string `json:"containerPath"`
	HostPath       string `json:"hostPath"`
	Readonly       bool   `json:"readonly,omitempty"`
	SelinuxRelabel bool   `json:"selinuxRelabel,omitempty"`
	Propagation    int32  `json:"propagation,omitempty"`
	// Image and ImageRef are set for an image volume.
	Image    string `json:"image,omitempty"`
	ImageRef string `json:"imageRef,omitempty"`
}

// Annotations Berth puts on every container's spec, the names containerd
// uses, so tools that read them (NRI plugins, kata) work unchanged.
const (
	AnnotationContainerType    = "io.kubernetes.cri.container-type"
	AnnotationContainerName    = "io.kubernetes.cri.container-name"
	AnnotationSandboxID        = "io.kubernetes.cri.sandbox-id"
	AnnotationSandboxName      = "io.kubernetes.cri.sandbox-name"
	AnnotationSandboxNamespace = "io.kubernetes.cri.sandbox-namespace"
	AnnotationSandboxUID       = "io.kubernetes.cri.sandbox-uid"
	AnnotationImageName        = "io.kubernetes.cri.image-name"
	// AnnotationLabels holds the container's CRI labels as JSON: the OCI
	// spec has annotations only.
	AnnotationLabels = "io.berth.labels"
)

// specVersion is the runtime-spec version Berth's specs declare. They use
// nothing newer than 1.0.2, and older runtimes (crun 1.8, Debian 12's)
// refuse a version they do not know, so the spec says 1.0.2 rather than
// the version of the Go types.
const specVersion = "1.0.2"

// Generate builds the OCI spec for a container. Bad input is marked
// errdefs.Invalid.
func Generate(o *SpecOptions) (*Generated, error) {
	if o.Config == nil || o.Pod == nil || o.Host == nil {
		return nil, fmt.Errorf("spec for %s: config, pod and host are required", o.ID)
	}
	sc := o.Config.GetLinux().GetSecurityContext()
	g := &Generated{Spec: &rspec.Spec{
		Version:  specVersion,
		Root:     &rspec.Root{Path: o.Rootfs, Readonly: sc.GetReadonlyRootfs()},
		Hostname: o.Pod.Hostname,
		Process:  &rspec.Process{Terminal: o.Config.GetTty()},
		Linux: &rspec.Linux{
			CgroupsPath: cgroupdriver.ContainerCgroupsPath(o.Pod.CgroupParent, o.ID),
			Resources:   &rspec.LinuxResources{},
		},
	}}
	steps := []func(*SpecOptions, *Generated) error{
		setProcess,
		setUser,
		setNamespaces,
		setSELinux, // before mounts: volumes are relabelled with its mount label
		setMounts,
		setUserNamespace, // after mounts: volumes become idmapped
		setCgroupDelegation,
		setDevices,
		setResources,
		// Security last: privileged undoes masks and devices set above,
		// and the default seccomp profile depends on the capabilities.
		setSecurity,
	}
	for _, step := range steps {
		if err := step(o, g); err != nil {
			return nil, err
		}
	}
	setAnnotations(o, g.Spec)
	return g, nil
}

// setAnnotations gives the spec the request's annotations the handler
// allows, then Berth's own (which a request cannot override). A runtime
// reads its spec's annotations as instructions (crun's run.oci.*, kata's
// io.katacontainers.*), so a pod passes only what the node allows.
func setAnnotations(o *SpecOptions, s *rspec.Spec) {
	a := make(map[string]string, 8)
	for k, v := range o.Config.GetAnnotations() {
		if annotationAllowed(k, o.AllowedAnnotations) {
			a[k] = v
		}
	}
	a[AnnotationContainerType] = "container"
	a[AnnotationContainerName] = o.Config.GetMetadata().GetName()
	a[AnnotationSandboxID] = o.Pod.ID
	a[AnnotationSandboxName] = o.Pod.Name
	a[AnnotationSandboxNamespace] = o.Pod.Namespace
	a[AnnotationSandboxUID] = o.Pod.UID
	a[AnnotationImageName] = o.ImageName
	setCgroupAnnotations(o.Pod.CgroupParent, a)
	if labels := o.Config.GetLabels(); len(labels) > 0 {
		if b, err := json.Marshal(labels); err == nil {
			a[AnnotationLabels] = string(b)
		}
	}
	s.Annotations = a
}

// annotationAllowed reports whether key equals an allowed entry or
// starts with an entry ending in "*".
func annotationAllowed(key string, allowed []string) bool {
	for _, a := range allowed {
		if prefix, ok := strings.CutSuffix(a, "*"); ok {
			if prefix != "" && strings.HasPrefix(key, prefix) {
				return true
			}
		} else if key == a {
			return true
		}
	}
	return false
}

// invalidf marks a request error.
func invalidf(format string, args ...any) error {
	return errdefs.Invalidf(format, args...)
}
