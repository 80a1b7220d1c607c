package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/sirupsen/logrus"

	"github.com/berth-cri/berth/errdefs"
)

// podIfName is the pod's interface, as kubelet's CNI code has always named it.
const podIfName = "eth0"

// NetworkOptions say where CNI configs and plugins are.
type NetworkOptions struct {
	// ConfDir holds CNI configs (.conflist, .conf, .json); the first valid
	// one in lexical order is the pod network, as kubelet, CRI-O and
	// containerd choose.
	ConfDir string
	// PluginDirs are searched, in order, for plugin binaries.
	PluginDirs []string
	// CacheDir is libcni's result cache (kept across restarts: DEL reads
	// the result of ADD from it).
	CacheDir string
	// Fallback, if set, is the pod network while ConfDir holds no config
	// file at all. A directory with configs that are all invalid does not
	// fall back: the node's admin meant a network, and pods on another one
	// would hide the mistake.
	Fallback *FallbackNetwork
}

// FallbackNetwork is a CNI config list that is not in the config
// directory: built into berthd, or a file named in berthd's config.
type FallbackNetwork struct {
	// Source names it for logs and status ("builtin ..." or a path).
	Source string
	// Load returns the config list; it is called on every use, so a file
	// edited in place is picked up as the directory's files are.
	Load func() ([]byte, error)
}

// NetworkInfo says which CNI config new pods get, for Status and logs.
type NetworkInfo struct {
	ConfDir string `json:"confDir"`
	// Name is the CNI network name, File where its config came from.
	Name string `json:"name,omitempty"`
	File string `json:"file,omitempty"`
	// Fallback is true when ConfDir has no config and File is the
	// fallback's source.
	Fallback bool `json:"fallback"`
	// Error says why pods cannot get a network; empty when they can.
	Error string `json:"error,omitempty"`
}

// network runs the CNI plugins through libcni.
type network struct {
	opts NetworkOptions
	cni  *libcni.CNIConfig

	// lastChoice is the config last chosen (file, or error), so a change
	// is logged once rather than on every kubelet Status poll.
	lastMu     sync.Mutex
	lastChoice string
}

func newNetwork(opts NetworkOptions) *network {
	// The exec is given, not left nil: libcni fills a nil one in lazily on
	// every call, a data race between concurrent RunPodSandbox calls.
	exec := &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: os.Stderr}, PluginDecoder: version.PluginDecoder{}}
	return &network{opts: opts, cni: libcni.NewCNIConfigWithCacheDir(opts.PluginDirs, opts.CacheDir, exec)}
}

// podNetwork is a pod's attachment, recorded before ADD runs so that DEL
// can run with the same config and arguments after a crash, a restart, or
// a change in the config directory.
type podNetwork struct {
	// Name is the CNI network name.
	Name string `json:"name"`
	// File is the config file it came from, for people.
	File string `json:"file"`
	// ConfList is the network config list used for ADD, as bytes.
	ConfList json.RawMessage `json:"confList"`
	// NetNS is the network namespace pin given to the plugins.
	NetNS string `json:"netns"`
	// Args are the CNI_ARGS (K8S_POD_NAME, ...).
	Args [][2]string `json:"args"`
	// Capabilities are the runtimeConfig capability arguments
	// (portMappings, ipRanges, bandwidth).
	Capabilities map[string]any `json:"capabilities,omitempty"`
	// Attached is set before ADD and cleared once DEL succeeds: while it
	// is set, teardown must run DEL.
	Attached bool `json:"attached"`
}

// load returns the pod network and where it came from: the first config
// in the directory, in lexical order, that parses and whose plugins are
// all found; the fallback when the directory has no config file at all.
// The error says why none qualifies, file by file.
func (n *network) load() (*libcni.NetworkConfigList, string, error) {
	list, file, fallback, err := n.choose()
	n.logChoice(file, fallback, err)
	return list, file, err
}

func (n *network) choose() (list *libcni.NetworkConfigList, file string, fallback bool, err error) {
	files, err := libcni.ConfFiles(n.opts.ConfDir, []string{".conflist", ".conf", ".json"})
	if err != nil {
		return nil, "", false, errdefs.FailedPreconditionf("network not ready: CNI config dir %s: %v", n.opts.ConfDir, err)
	}
	if len(files) == 0 && n.opts.Fallback != nil {
		list, err := n.loadFallback()
		return list, n.opts.Fallback.Source, true, err
	}
	if len(files) == 0 {
		return nil, "", false, errdefs.FailedPreconditionf("network not ready: no CNI network config in %s", n.opts.ConfDir)
	}
	list, file, err = n.loadDir(files)
	return list, file, false, err
}

func (n *network) loadFallback() (*libcni.NetworkConfigList, error) {
	fb := n.opts.Fallback
	b, err := fb.Load()
	var list *libcni.NetworkConfigList
	if err == nil {
		list, err = libcni.ConfListFromBytes(b)
	}
	if err == nil {
		err = n.findPlugins(list)
	}
	if err != nil {
		return nil, errdefs.FailedPreconditionf("network not ready: no CNI network config in %s, and the fallback (%s): %v",
			n.opts.ConfDir, fb.Source, err)
	}
	return list, nil
}

// logChoice logs which config new pods get whenever that changes, so the
// log says when berthd runs pods on its fallback and when a node's own
// config takes over.
func (n *network) logChoice(file string, fallback bool, err error) {
	choice := file
	if err != nil {
		choice = "error: " + err.Error()
	}
	n.lastMu.Lock()
	changed := choice != n.lastChoice
	n.lastChoice = choice
	n.lastMu.Unlock()
	switch {
	case !changed:
	case err != nil:
		logrus.Warnf("pods cannot get a network: %v", err)
	case fallback:
		logrus.Warnf("no CNI network config in %s: new pods use the fallback network (%s); "+
			"a config there takes over for new pods, and berthd never writes one (network.fallback_config)",
			n.opts.ConfDir, file)
	default:
		logrus.Infof("new pods use the CNI network config %s", file)
	}
}

// info describes the choice load makes now.
func (n *network) info() NetworkInfo {
	list, file, fallback, err := n.choose()
	n.logChoice(file, fallback, err)
	ni := NetworkInfo{ConfDir: n.opts.ConfDir, File: file, Fallback: fallback}
	if err != nil {
		ni.Error = err.Error()
	} else {
		ni.Name = list.Name
	}
	return ni
}

func (n *network) loadDir(files []string) (*libcni.NetworkConfigList, string, error) {
	sort.Strings(files)
	var problems []string
	for _, f := range files {
		list, err := loadConfFile(f)
		if err == nil {
			err = n.findPlugins(list)
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", filepath.Base(f), err))
			continue
		}
		return list, f, nil
	}
	return nil, "", errdefs.FailedPreconditionf("network not ready: no valid CNI network config in %s: %s",
		n.opts.ConfDir, strings.Join(problems, "; "))
}

func loadConfFile(path string) (*libcni.NetworkConfigList, error) {
	if strings.HasSuffix(path, ".conflist") {
		return libcni.ConfListFromFile(path)
	}
	// A single-plugin .conf is still what many installers write; libcni
	// upgrades it to a list (kubelet and containerd accept it too).
	conf, err := libcni.ConfFromFile(path)
	if err != nil {
		return nil, err
	}
	return libcni.ConfListFromConf(conf)
}

func (n *network) findPlugins(list *libcni.NetworkConfigList) error {
	if len(list.Plugins) == 0 {
		return fmt.Errorf("no plugins")
	}
	for _, p := range list.Plugins {
		if _, err := invoke.FindInPath(p.Network.Type, n.opts.PluginDirs); err != nil {
			return fmt.Errorf("plugin %q not found in %s", p.Network.Type, strings.Join(n.opts.PluginDirs, ":"))
		}
	}
	return nil
}

// status returns nil when pods can get a network, else why not.
func (n *network) status() error {
	_, _, err := n.load()
	return err
}

func (pn *podNetwork) runtimeConf(podID, netns string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID:    podID,
		NetNS:          netns,
		IfName:         podIfName,
		Args:           pn.Args,
		CapabilityArgs: pn.Capabilities,
	}
}

// attach runs ADD. On error some plugins may have done their part: the
// caller's teardown runs DEL (pn.Attached is already recorded).
func (n *network) attach(ctx context.Context, podID string, pn *podNetwork) (*types100.Result, error) {
	list, err := libcni.ConfListFromBytes(pn.ConfList)
	if err != nil {
		return nil, fmt.Errorf("CNI network %s: %w", pn.Name, err)
	}
	res, err := n.cni.AddNetworkList(ctx, list, pn.runtimeConf(podID, pn.NetNS))
	if err != nil {
		return nil, fmt.Errorf("CNI network %s (%s): add: %w", pn.Name, pn.File, err)
	}
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		return nil, fmt.Errorf("CNI network %s: result: %w", pn.Name, err)
	}
	return r, nil
}

// detach runs DEL with the recorded config, so it works after a restart
// and after the config directory changed. When the namespace is gone
// (after a reboot, or unpinned by a crash) the plugins get no netns and
// release what they hold outside it: IPs, host veth ends, iptables rules.
func (n *network) detach(ctx context.Context, podID string, pn *podNetwork) error {
	list, err := libcni.ConfListFromBytes(pn.ConfList)
	if err != nil {
		return fmt.Errorf("CNI network %s: %w", pn.Name, err)
	}
	netns := pn.NetNS
	if !isPinned(netns) {
		netns = ""
	}
	if err := n.cni.DelNetworkList(ctx, list, pn.runtimeConf(podID, netns)); err != nil {
		return fmt.Errorf("CNI network %s (%s): delete: %w", pn.Name, pn.File, err)
	}
	return nil
}

// podIPs are the addresses CNI gave the pod's own interfaces, IPv4 first
// (kubelet takes the first as the pod IP).
func podIPs(r *types100.Result) []string {
	var v4, v6 []string
	for _, ipc := range r.IPs {
		if ipc.Interface != nil && *ipc.Interface >= 0 && *ipc.Interface < len(r.Interfaces) &&
			r.Interfaces[*ipc.Interface].Sandbox == "" {
			continue // an address on the host side (a bridge, say)
		}
		if ip4 := ipc.Address.IP.To4(); ip4 != nil {
			v4 = append(v4, ip4.String())
		} else {
			v6 = append(v6, ipc.Address.IP.String())
		}
	}
	return append(v4, v6...)
}

// resultJSON is the result as the plugins' CNI version prints it.
func resultJSON(r types.Result) json.RawMessage {
	b, err := json.Marshal(r)
	if err != nil {
		return nil
	}
	return b
}
