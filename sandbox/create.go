package sandbox

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/atomicfile"
	"github.com/berth-cri/berth/cgroupdriver"
	"github.com/berth-cri/berth/errdefs"
	"github.com/berth-cri/berth/ids"
	"github.com/berth-cri/berth/steptrace"
)

// createTimeout bounds the work of one RunPodSandbox. The work does not
// stop when the caller goes away: kubelet's retry waits for it and takes
// its pod, so it is better finished than half done and undone.
const createTimeout = 4 * time.Minute

// CreateRequest is a RunPodSandbox as the Manager needs it.
type CreateRequest struct {
	// Config is the request's config; it must not change afterwards.
	Config *runtimeapi.PodSandboxConfig
	// RuntimeHandler is the resolved handler name (never empty).
	RuntimeHandler string
	// VM says the handler is a VM runtime: the pod gets an infra process
	// whatever its PID mode.
	VM bool
	// PodCIDR is the node's pod CIDR (kubelet's UpdateRuntimeConfig), for
	// the CNI ipRanges capability; empty if unknown.
	PodCIDR string
}

// plan is a validated request: everything Create needs, checked before
// anything is made.
type plan struct {
	md           Metadata
	hostNet      bool
	hostIPC      bool
	hostname     string
	sysctls      []sysctl
	cgroupParent string // the request's; empty means the default
	caps         map[string]any
	userns       *userNS // nil: the node's user namespace
}

func validate(req CreateRequest) (*plan, error) {
	cfg := req.Config
	if cfg == nil {
		return nil, errdefs.Invalidf("config is required")
	}
	md := cfg.GetMetadata()
	if md == nil {
		return nil, errdefs.Invalidf("config.metadata is required")
	}
	p := &plan{md: Metadata{Name: md.Name, Namespace: md.Namespace, UID: md.Uid, Attempt: md.Attempt}}
	for _, f := range []struct{ field, v string }{{"name", md.Name}, {"namespace", md.Namespace}, {"uid", md.Uid}} {
		field, v := f.field, f.v
		if v == "" {
			return nil, errdefs.Invalidf("config.metadata.%s is required", field)
		}
		// They go into CNI_ARGS (K=V;K=V) and log lines.
		if strings.ContainsAny(v, ";=\n\r\x00") {
			return nil, errdefs.Invalidf("config.metadata.%s %q: must not contain ';', '=' or control characters", field, v)
		}
	}
	if req.RuntimeHandler == "" {
		return nil, errdefs.Invalidf("runtime handler is required")
	}
	ns := namespaceOptions(cfg)
	p.hostNet = ns.GetNetwork() == runtimeapi.NamespaceMode_NODE
	p.hostIPC = ns.GetIpc() == runtimeapi.NamespaceMode_NODE
	if m := ns.GetNetwork(); m != runtimeapi.NamespaceMode_POD && m != runtimeapi.NamespaceMode_NODE {
		return nil, errdefs.Invalidf("namespace_options.network %s: a pod's network namespace is POD or NODE", m)
	}
	if m := ns.GetIpc(); m != runtimeapi.NamespaceMode_POD && m != runtimeapi.NamespaceMode_NODE {
		return nil, errdefs.Invalidf("namespace_options.ipc %s: a pod's IPC namespace is POD or NODE", m)
	}
	if m := ns.GetPid(); m == runtimeapi.NamespaceMode_TARGET {
		return nil, errdefs.Invalidf("namespace_options.pid TARGET is for containers, not pods")
	}
	var err error
	if p.userns, err = parseUserNS(ns); err != nil {
		return nil, err
	}

	// A client that sets no hostname gets the node's, as containerd does.
	// The pod name is no default: kubelet always sets the hostname, and
	// other clients' names (critest's, say) are often longer than 64.
	p.hostname = cfg.Hostname
	if p.hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("host name: %w", err)
		}
		p.hostname = h
	}
	if err := validateHostname(p.hostname); err != nil {
		return nil, err
	}
	if err := validateDNS(cfg.DnsConfig); err != nil {
		return nil, err
	}
	if p.sysctls, err = parseSysctls(cfg.GetLinux().GetSysctls(), !p.hostNet, !p.hostIPC); err != nil {
		return nil, err
	}
	// Its form is checked against the driver in Create.
	p.cgroupParent = cfg.GetLinux().GetCgroupParent()
	if p.caps, err = cniCapabilities(cfg, req.PodCIDR); err != nil {
		return nil, err
	}
	return p, nil
}

// Create runs a pod sandbox: its cgroup, pinned namespaces (hostname and
// sysctls set inside), /dev/shm, CNI network, hostname/resolv.conf/hosts
// files and, if needed, its infra process. A pod that fails halfway is
// torn down before Create returns, leaving nothing behind.
//
// A pod with the same Metadata that already exists is an already-exists
// error, unless its RunPodSandbox is still running, or finished after its
// caller gave up: then a call with the same config and handler is a
// kubelet retry, which waits for it and gets its pod (see inflight).
func (m *Manager) Create(ctx context.Context, req CreateRequest) (*Sandbox, error) {
	pl, err := validate(req)
	if err != nil {
		return nil, err
	}
	if pl.cgroupParent != "" {
		pl.cgroupParent = m.opts.CgroupDriver.Canonical(pl.cgroupParent)
		if err := m.opts.CgroupDriver.ValidateParent(pl.cgroupParent); err != nil {
			return nil, errdefs.Invalid(err)
		}
	}
	id, err := m.creates.Do(ctx, pl.md, podRequest{cfg: req.Config, handler: req.RuntimeHandler}, m.namesFor(pl.md),
		func(ctx context.Context) (string, error) {
			id := ids.New()
			release, err := m.reserveUserNS(id, pl.userns)
			if err != nil {
				return "", err
			}
			defer release()
			sb, err := m.create(ctx, id, req, pl)
			if err != nil {
				return "", err
			}
			return sb.ID, nil
		})
	if err != nil {
		return nil, err
	}
	return m.Get(id)
}

func (m *Manager) create(ctx context.Context, id string, req CreateRequest, pl *plan) (*Sandbox, error) {
	dir := filepath.Join(m.podsDir, id)
	sb := &Sandbox{Definition: Definition{
		ID:             id,
		Metadata:       pl.md,
		Config:         req.Config,
		RuntimeHandler: req.RuntimeHandler,
		CreatedAt:      time.Now(),
		Hostname:       pl.hostname,
		Infra:          needsInfra(req.Config, req.VM),
		ResolvConfPath: filepath.Join(dir, "resolv.conf"),
		HostsPath:      filepath.Join(dir, "hosts"),
		HostnamePath:   filepath.Join(dir, "hostname"),
		CgroupParent:   pl.cgroupParent,
		Dir:            dir,
		RunDir:         filepath.Join(m.runPodsDir, id),
	}, Status: Status{State: StateCreating}}
	if sb.CgroupParent == "" {
		sb.CgroupParent = cgroupdriver.PodCgroup(m.opts.CgroupParent, id)
	}
	p := &pod{sb: sb}
	p.op.Lock()
	defer p.op.Unlock()

	// What the pod will be given is planned before anything is made, so
	// the one record written first names all of it: the cgroup
	// directories that will be new and the CNI network that will be
	// added (a DEL of a network never added is harmless). A bad CNI
	// config fails the call here, with nothing to undo.
	pc, applyCgroup, err := planCgroup(sb.CgroupParent)
	if err != nil {
		return nil, err
	}
	p.cgroup = &pc
	if !pl.hostNet {
		if p.net, err = m.planNetwork(sb, pl); err != nil {
			return nil, err
		}
	}

	// The record comes first: from here on, a crash leaves a "creating"
	// record that the next start-up tears down.
	for _, d := range []string{sb.Dir, sb.RunDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			os.RemoveAll(sb.Dir)
			os.RemoveAll(sb.RunDir)
			return nil, fmt.Errorf("pod %s: %w", id, err)
		}
	}
	// Durable: the pod's directories and the CNI plugins' IPAM lease
	// are on disk. Nothing is told: the state is still creating.
	if err := m.save(ctx, p, sb); err != nil {
		os.RemoveAll(sb.Dir)
		os.RemoveAll(sb.RunDir)
		return nil, err
	}
	m.mu.Lock()
	m.pods[id] = p
	m.mu.Unlock()

	ready, exited, err := m.setUp(ctx, p, sb.Clone(), pl, applyCgroup)
	if err == nil {
		m.mu.Lock()
		m.names[pl.md] = id
		m.mu.Unlock()
		m.watchInfra(p, exited)
		return ready.Clone(), nil
	}
	// Whatever was made goes, the infra included (teardown stops it).
	if terr := m.teardown(ctx, p, true); terr != nil {
		// The record stays ("creating"): the next start-up tries again.
		logrus.WithField("pod_sandbox_id", id).Errorf("cleaning up the failed pod: %v", terr)
	}
	m.mu.Lock()
	delete(m.pods, id)
	m.mu.Unlock()
	return nil, fmt.Errorf("pod %s (%s/%s): %w", truncID(id), pl.md.Namespace, pl.md.Name, err)
}

// setUp makes the pod, step by step, recording each step before taking it.
// It returns the ready pod and, for a pod with an infra, the channel its
// exit closes.
func (m *Manager) setUp(ctx context.Context, p *pod, sb *Sandbox, pl *plan, applyCgroup func() error) (*Sandbox, <-chan struct{}, error) {
	sb, err := m.makePod(ctx, p, sb, pl, applyCgroup)
	if err != nil {
		return nil, nil, err
	}
	// Plugins come before the infra process: a plugin's refusal then has
	// no process to undo, only what teardown removes.
	endPlugins := steptrace.Begin(ctx, "plugins")
	err = m.changing(ctx, StepRun, sb)
	endPlugins()
	if err != nil {
		return nil, nil, err
	}
	told := sb.Clone()
	var exited <-chan struct{}
	if sb.Infra {
		// Last, once everything it joins is there. From here on any
		// failure tears down the infra too: the record says Infra.
		endInfra := steptrace.Begin(ctx, "infra")
		exited, err = m.startInfra(ctx, sb)
		endInfra()
		if err != nil {
			m.changed(ctx, StepRunFailed, told)
			return nil, nil, err
		}
	}
	// Recorded at last with all the steps made, and READY.
	ready, err := m.update(ctx, p, func(st *Status) error {
		*st = sb.Status
		st.State = StateReady
		return nil
	})
	if err != nil {
		m.changed(ctx, StepRunFailed, told)
		return nil, nil, err
	}
	return ready, exited, nil
}

// makePod makes the pod's cgroup, namespaces, /dev/shm, network and
// files, as the record planned them.
func (m *Manager) makePod(ctx context.Context, p *pod, sb *Sandbox, pl *plan, applyCgroup func() error) (*Sandbox, error) {
	endCgroup := steptrace.Begin(ctx, "cgroup")
	err := applyCgroup()
	endCgroup()
	if err != nil {
		return nil, err
	}

	// Namespaces, set up from inside before they are pinned.
	var kinds []nsKind
	if !pl.hostNet {
		kinds = append(kinds, nsNet, nsUTS)
	}
	if !pl.hostIPC {
		kinds = append(kinds, nsIPC)
	}
	pin := pinNamespaces
	if pl.userns != nil {
		pin = pl.userns.pinNamespaces
	}
	endPin := steptrace.Begin(ctx, "namespaces")
	pins, err := pin(filepath.Join(m.nsDir, sb.ID), kinds, func() error {
		if !pl.hostNet {
			if err := unix.Sethostname([]byte(pl.hostname)); err != nil {
				return fmt.Errorf("set hostname: %w", err)
			}
			if err := loopbackUp(); err != nil {
				return err
			}
		}
		for _, s := range pl.sysctls {
			if err := s.apply(); err != nil {
				return err
			}
		}
		return nil
	})
	endPin()
	if err != nil {
		return nil, err
	}
	sb.NetNSPath, sb.UTSNSPath, sb.IPCNSPath = pins["net"], pins["uts"], pins["ipc"]
	if p.net != nil && p.net.NetNS != sb.NetNSPath {
		return nil, fmt.Errorf("pod %s: network namespace pinned at %s, planned at %s", sb.ID, sb.NetNSPath, p.net.NetNS)
	}
	if pl.userns != nil {
		sb.UserNSPath, sb.UIDMappings, sb.GIDMappings = pins["user"], pl.userns.uids, pl.userns.gids
	}

	if pl.hostIPC {
		sb.ShmPath = "/dev/shm"
	} else {
		shm := filepath.Join(sb.RunDir, "shm")
		endShm := steptrace.Begin(ctx, "shm")
		err := mountShm(shm, m.opts.ShmSize, pl.userns)
		endShm()
		if err != nil {
			return nil, err
		}
		sb.ShmPath = shm
	}

	if p.net != nil {
		endCNI := steptrace.Begin(ctx, "cni add")
		res, err := m.net.attach(ctx, sb.ID, p.net)
		endCNI()
		if err != nil {
			return nil, err
		}
		sb.IPs = podIPs(res)
		sb.NetworkName = p.net.Name
		sb.NetworkResult = resultJSON(res)
	}

	endFiles := steptrace.Begin(ctx, "pod files")
	err = m.writePodFiles(sb, pl)
	endFiles()
	if err != nil {
		return nil, err
	}
	// Published (not yet recorded: the ready record follows) for
	// plugins and the infra, which read the pod's IPs and paths. A crash
	// before that record loses nothing: the "creating" record names the
	// fixed paths teardown works from.
	m.setSandbox(ctx, p, sb.Clone())
	return sb, nil
}

// planNetwork is the CNI network the pod will be added to, with the
// path its network namespace will be pinned at.
func (m *Manager) planNetwork(sb *Sandbox, pl *plan) (*podNetwork, error) {
	list, file, err := m.net.load()
	if err != nil {
		return nil, err
	}
	return &podNetwork{
		Name:         list.Name,
		File:         file,
		ConfList:     list.Bytes,
		NetNS:        filepath.Join(m.nsDir, sb.ID, "net"),
		Args:         cniArgs(sb.ID, sb.Metadata),
		Capabilities: pl.caps,
		Attached:     true,
	}, nil
}

// writePodFiles writes hostname, resolv.conf and hosts for the containers
// to mount.
func (m *Manager) writePodFiles(sb *Sandbox, pl *plan) error {
	resolv, err := resolvConf(sb.Config.GetDnsConfig(), m.opts.HostResolvConf)
	if err != nil {
		return err
	}
	hosts, err := hostsFile(sb.Hostname, sb.IPs, pl.hostNet)
	if err != nil {
		return err
	}
	for p, b := range map[string][]byte{
		sb.HostnamePath:   []byte(sb.Hostname + "\n"),
		sb.ResolvConfPath: resolv,
		sb.HostsPath:      hosts,
	} {
		// Not fsynced: containers of this boot read them; after a
		// reboot the pod is torn down.
		if err := atomicfile.WriteFileNoSync(p, b, 0o644); err != nil {
			return err
		}
		if err := pl.userns.chown(p); err != nil {
			return err
		}
	}
	return nil
}

// loopbackUp brings up lo in the calling thread's network namespace. Every
// pod needs it, whether or not its CNI config has the loopback plugin.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback up: get flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback up: set flags: %w", err)
	}
	return nil
}

func truncID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
