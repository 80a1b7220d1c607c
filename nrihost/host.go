// Package nrihost runs the runtime side of NRI, the Node Resource
// Interface (github.com/containerd/nri): plugins that see every pod and
// container event, adjust containers before they are created and update
// their resources. It owns the NRI adaptation (the plugin socket and the
// pre-installed plugins), converts Berth's pods and containers to NRI's
// types, and applies what plugins ask for through the sandbox and oci
// managers. server's lifecycle notifiers call its hooks at each step the
// managers tell them.
package nrihost

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/nri/pkg/adaptation"
	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-cri/berth/config"
	"github.com/berth-cri/berth/oci"
	"github.com/berth-cri/berth/sandbox"
)

// runtimeName is how Berth introduces itself to plugins.
const runtimeName = "berth"

// Host is the NRI runtime side of berthd: one hook per NRI event, called
// by server's notifiers of the oci and sandbox managers' steps.
type Host struct {
	nri *adaptation.Adaptation

	// started is set once Start ran: hooks called before (while the
	// managers restore) have no plugin to tell.
	started atomic.Bool

	// Set by Attach, before Start.
	pods        *sandbox.Manager
	ctrs        *oci.Manager
	node        *oci.Host
	stopTimeout func() time.Duration

	mu sync.Mutex
	// specs are the containers' OCI specs as plugins last saw them
	// adjusted and updated, by container id: read from the bundle once,
	// then kept here, so no event reads a file.
	specs map[string]*rspec.Spec
	// pending are the resources an UpdateContainer decided, recorded in
	// specs once PostUpdateContainer confirms them.
	pending map[string]*rspec.LinuxResources
}

// New makes the adaptation from the [nri] config. Nothing listens or
// runs until Start.
func New(cfg config.NRIConfig, version string) (*Host, error) {
	// The library keeps its timeouts in package variables.
	adaptation.SetPluginRegistrationTimeout(cfg.RegistrationTimeout.Duration)
	adaptation.SetPluginRequestTimeout(cfg.RequestTimeout.Duration)
	h := &Host{specs: map[string]*rspec.Spec{}, pending: map[string]*rspec.LinuxResources{}}
	a, err := adaptation.New(runtimeName, version, h.synchronize, h.updateContainers,
		adaptation.WithSocketPath(cfg.SocketPath),
		adaptation.WithPluginPath(cfg.PluginPath),
		adaptation.WithPluginConfigPath(cfg.PluginConfigPath),
		adaptation.WithDefaultValidator(&cfg.DefaultValidator),
	)
	if err != nil {
		return nil, fmt.Errorf("NRI: %w", err)
	}
	h.nri = a
	return h, nil
}

// Attach gives the Host the managers whose pods and containers plugins
// see. stopTimeout is the grace period of an eviction.
func (h *Host) Attach(pods *sandbox.Manager, ctrs *oci.Manager, node *oci.Host, stopTimeout func() time.Duration) {
	h.pods, h.ctrs, h.node, h.stopTimeout = pods, ctrs, node, stopTimeout
}

// Start starts the pre-installed plugins and listens for external ones.
// Each is synchronized with the pods and containers there are.
func (h *Host) Start() error {
	if h.pods == nil || h.ctrs == nil {
		return fmt.Errorf("NRI: start before the pod and container managers were attached")
	}
	h.started.Store(true)
	if err := h.nri.Start(); err != nil {
		h.started.Store(false)
		return fmt.Errorf("NRI: %w", err)
	}
	return nil
}

// Stop closes the socket and stops the plugins berthd started.
func (h *Host) Stop() {
	h.nri.Stop()
}

// BlockSync keeps plugins that connect from being synchronized until
// release is called. RunPodSandbox and CreateContainer hold it across
// their work, so a pod or container is either in a new plugin's
// synchronization or reaches it as an event, never lost between the two.
func (h *Host) BlockSync() (release func()) {
	b := h.nri.BlockPluginSync()
	return b.Unblock
}
