// Package config is Berth's TOML configuration: the schema, its defaults,
// drop-ins, validation and the keys that may change on reload.
package config

import (
	"time"
)

// DefaultPath is where berthd looks for its configuration.
const DefaultPath = "/etc/berth/berth.toml"

// Values of network.fallback_config that are not a path.
const (
	FallbackBuiltin = "builtin"
	FallbackNone    = "none"
)

// Config is the whole configuration. Every key has a default (see Default),
// so berthd runs with no file at all.
type Config struct {
	// Listen is the CRI endpoint, unix:///path.
	Listen string `toml:"listen"`
	// Root holds persistent state: metadata and image storage.
	Root string `toml:"root"`
	// RunRoot holds state that dies with the machine: sockets, bundles,
	// namespace pins, exit files.
	RunRoot string `toml:"runroot"`

	Log     LogConfig     `toml:"log"`
	Metrics MetricsConfig `toml:"metrics"`
	Runtime RuntimeConfig `toml:"runtime"`
	Image   ImageConfig   `toml:"image"`
	Network NetworkConfig `toml:"network"`
	Pod     PodConfig     `toml:"pod"`
	NRI     NRIConfig     `toml:"nri"`
	Stream  StreamConfig  `toml:"stream"`
	Memory  MemoryConfig  `toml:"memory"`
	// Debug is left out of Encode's output while it is empty, so that
	// the config berthd writes (berthd config, the tests' launcher) stays
	// readable by a berthd from before the section.
	Debug DebugConfig `toml:"debug,omitempty"`
}

// LogConfig is reloadable.
type LogConfig struct {
	Level  string `toml:"level"`  // panic, fatal, error, warn, info, debug, trace
	Format string `toml:"format"` // text or json
}

type MetricsConfig struct {
	// Address is host:port for the Prometheus /metrics endpoint; empty is off.
	Address string `toml:"address"`
}

// DebugConfig is read at start only.
type DebugConfig struct {
	// Address is the path of a unix socket (root's only) serving Go's
	// profiles at /debug/pprof/; empty is off.
	Address string `toml:"address"`
}

type RuntimeConfig struct {
	// Default names the handler used when a request names none.
	Default string `toml:"default"`
	// Handlers are the CRI runtime handlers (RuntimeClass handler names).
	Handlers map[string]RuntimeHandler `toml:"handlers"`
	// MonitorPath is berth-monitor; empty means next to berthd.
	MonitorPath string `toml:"monitor_path"`
	// CriuPath is the CRIU binary CheckpointContainer has the runtime
	// run (it must be named criu: runtimes run criu from PATH); empty
	// means criu from berthd's PATH.
	CriuPath string `toml:"criu_path"`
	// PausePath is the pause program used as a pod's infra process; empty
	// means berth-pause next to berthd.
	PausePath string `toml:"pause_path"`
	// CgroupDriver is cgroupfs or systemd; empty follows the node (see
	// cgroupdriver.Resolve: systemd where systemd is PID 1 and berthd
	// runs in its unit, cgroupfs elsewhere, and never a change under
	// existing pods).
	CgroupDriver string `toml:"cgroup_driver"`
	// CgroupParent is the parent of the cgroups of pods whose request
	// names none, in the driver's form: a cgroupfs path or a slice.
	// Empty is the driver's default, /berth or berth.slice.
	CgroupParent string `toml:"cgroup_parent"`
	// RestrictOOMScoreAdj clamps requested oom_score_adj values below
	// berthd's own up to it (containerd's restrict_oom_score_adj): without
	// CAP_SYS_RESOURCE nobody can lower them.
	RestrictOOMScoreAdj bool `toml:"restrict_oom_score_adj"`
	// ExecSyncMaxOutput caps the output ExecSync answers, stdout and
	// stderr together (and never more than fits in a gRPC message), and
	// the bytes of log records each stream writes to the run root.
	ExecSyncMaxOutput int `toml:"exec_sync_max_output"`
	// ExecSyncOutputBudget bounds the ExecSync output berthd holds in
	// memory at once, every call together: a call whose output does not
	// fit waits up to its deadline, then gets ResourceExhausted.
	ExecSyncOutputBudget int64 `toml:"exec_sync_output_budget"`
	// StopTimeoutDefault is the grace period StopPodSandbox gives each
	// of the pod's containers between the stop signal and SIGKILL,
	// shortened to half of what the caller's deadline leaves (crictl
	// gives 2 s). StopContainer uses its request's timeout, never this.
	StopTimeoutDefault Duration `toml:"stop_timeout_default"`
	// SeccompUseDefaultWhenEmpty gives containers whose request names no
	// seccomp profile the RuntimeDefault one. Off, such a container is
	// unconfined, as the CRI defines it (kubelet always names a profile).
	SeccompUseDefaultWhenEmpty bool `toml:"seccomp_use_default_when_empty"`
	// DiscoverHandlers adds runc and crun as handlers of those names when
	// they are on PATH and no handler of that name is configured.
	DiscoverHandlers bool `toml:"discover_handlers"`
}

// RuntimeHandler is one OCI runtime binary.
type RuntimeHandler struct {
	// Path of the runtime binary; empty for the bundled handler "berth"
	// means berth-runner next to berthd.
	Path string `toml:"path"`
	// Root is the runtime's --root state directory; empty means
	// <runroot>/runtime/<handler>.
	Root string `toml:"root"`
	// Type is "oci" (a runc-compatible CLI) or "vm" (kata-style: every
	// pod gets an infra container).
	Type string `toml:"type"`
	// Discovered marks a handler found on PATH (discover_handlers)
	// rather than written in a file, for logs and Status.
	Discovered bool `toml:"-"`
	// AllowedAnnotations are the container annotations that reach the
	// OCI spec the runtime reads: a key equal to an entry, or starting
	// with an entry that ends in "*" (without it). Others stay in
	// Berth's record (ContainerStatus) only: annotations such as
	// run.oci.* (crun) or io.katacontainers.* (kata) change what a
	// runtime does, so a pod must not set them unless the node allows.
	AllowedAnnotations []string `toml:"allowed_annotations"`
	// CgroupWritable delegates a container's cgroup to its pod's root in
	// a user-namespaced pod on cgroup v2: /sys/fs/cgroup is mounted
	// read-write in the container's cgroup namespace, and the runtime
	// (berth-runner, runc 1.2+, crun) chowns the cgroup's delegation files
	// to the container's user, so that systemd or a nested runtime inside
	// can make cgroups below its own (containerd's cgroup_writable). Off
	// by default. Containers without a user namespace of their own keep a
	// read-only cgroupfs: there the container's root is the node's, and
	// could rewrite its own limits.
	CgroupWritable bool `toml:"cgroup_writable"`
}

type ImageConfig struct {
	// Driver is the containers/storage graph driver: overlay (default,
	// falls back to vfs where overlay cannot mount) or vfs.
	Driver string `toml:"driver"`
	// DriverOptions are passed to the graph driver (e.g. "overlay.mountopt=nodev").
	DriverOptions []string `toml:"driver_options"`
	// GraphRoot defaults to <root>/storage, RunRoot to <runroot>/storage.
	GraphRoot string `toml:"graph_root"`
	RunRoot   string `toml:"run_root"`
	// RegistriesConf is a containers registries.conf; empty uses
	// /etc/containers/registries.conf when it exists.
	RegistriesConf string `toml:"registries_conf"`
	// SignaturePolicy is a containers policy.json; empty accepts anything.
	SignaturePolicy string `toml:"signature_policy"`
	// PauseImage, if set, is pinned (never removed). Berth needs no pause
	// image of its own.
	PauseImage string `toml:"pause_image"`
	// PullRetries is how many times a transient registry error is retried.
	PullRetries int `toml:"pull_retries"`
	// PullTimeout bounds a whole pull when the caller sets no deadline.
	PullTimeout Duration `toml:"pull_timeout"`
}

type NetworkConfig struct {
	// ConfDir holds CNI configs; the first valid one in lexical order wins.
	ConfDir string `toml:"conf_dir"`
	// PluginDirs are searched for CNI plugin binaries.
	PluginDirs []string `toml:"plugin_dirs"`
	// CacheDir is libcni's result cache; empty means <root>/cni/cache.
	CacheDir string `toml:"cache_dir"`
	// FallbackConfig is the pod network used while ConfDir holds no CNI
	// config at all: "none" (the default: NetworkReady stays false until
	// a config appears, as CRI-O and containerd do, so a Kubernetes node
	// never puts pods on a network outside the cluster's before its CNI
	// DaemonSet writes one), "builtin" (contrib/cni/10-berth-bridge.conflist,
	// built into berthd; `make run` asks for it) or the absolute path of a
	// .conflist. A node's own config always wins. berthd never writes into
	// ConfDir.
	FallbackConfig string `toml:"fallback_config"`
}

type PodConfig struct {
	// ShmSize is the size of each pod's /dev/shm tmpfs, in bytes.
	ShmSize int64 `toml:"shm_size"`
	// ResolvConf is the host resolv.conf copied into pods with no DNS config.
	ResolvConf string `toml:"resolv_conf"`
	// UsernsMinHostID is the lowest node id a pod's user namespace may
	// map: the node's system and login users live below it (kubelet
	// allocates pods' ranges from 65536 on). Pods' ranges never overlap.
	UsernsMinHostID uint32 `toml:"userns_min_host_id"`
}

// Duration is a time.Duration written as "10s" in TOML.
type Duration struct{ time.Duration }

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

// Default returns the configuration berthd uses with no file.
func Default() *Config {
	c := &Config{
		Listen:  "unix:///run/berth/berth.sock",
		Root:    "/var/lib/berth",
		RunRoot: "/run/berth",
		Log:     LogConfig{Level: "info", Format: "text"},
		Runtime: RuntimeConfig{
			Default: "berth",
			Handlers: map[string]RuntimeHandler{
				"berth": {Type: "oci"},
			},
			RestrictOOMScoreAdj: true,
			DiscoverHandlers:    true,
			ExecSyncMaxOutput:   16 << 20,
			StopTimeoutDefault:  Duration{10 * time.Second},
		},
		Image: ImageConfig{
			Driver:      "overlay",
			PullRetries: 3,
			PullTimeout: Duration{30 * time.Minute},
		},
		Network: NetworkConfig{
			ConfDir:        "/etc/cni/net.d",
			PluginDirs:     []string{"/opt/cni/bin", "/usr/lib/cni"},
			FallbackConfig: FallbackNone,
		},
		Pod: PodConfig{
			ShmSize:    64 << 20,
			ResolvConf: "/etc/resolv.conf",
		},
		NRI:    defaultNRI(),
		Stream: defaultStream(),
		Memory: defaultMemory(),
	}
	c.Runtime.ExecSyncOutputBudget = 256 << 20
	c.Pod.UsernsMinHostID = 65536
	return c
}
