// Package server is the CRI gRPC front of berthd. It validates requests,
// translates CRI types to the packages below and back, and leaves every
// syscall and file layout to them. Errors from below carry errdefs kinds;
// the interceptor in interceptors.go maps them to gRPC codes.
//
// Each area keeps its own state in a service value declared in its own
// file (image.go, sandbox.go, container.go); Server only composes them.
package server

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/config"
	"github.com/berth-cri/berth/events"
	"github.com/berth-cri/berth/nrihost"
	"github.com/berth-cri/berth/stats"
)

// Options are what berthd knows beyond the config file.
type Options struct {
	// Version is berthd's own version, reported by Version.
	Version string
	// BinDir is where berthd's sibling binaries (berth-runner,
	// berth-monitor, berth-pause) are found when the config names none.
	BinDir string
}

// Server implements the CRI RuntimeService and ImageService. Any RPC not
// defined on it falls through to the embedded Unimplemented servers, which
// answer codes.Unimplemented naming the method.
type Server struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	runtimeapi.UnimplementedImageServiceServer

	opts Options

	mu  sync.RWMutex
	cfg *config.Config // replaced whole on reload; read through Config()

	// cgroups is the cgroup driver new pods get (fixed at start).
	cgroups cgroupChoice

	// podCIDR is set by UpdateRuntimeConfig and read by the network code.
	podCIDRMu sync.RWMutex
	podCIDR   string

	img imageService
	pod podService
	ctr containerService
	nri *nrihost.Host // nil unless [nri] enable

	// events fans container and pod changes out to GetContainerEvents.
	events *containerEvents
	// stats reads cgroups, storage and network namespaces for the stats
	// and metrics RPCs.
	stats *stats.Collector

	// streams serves Exec, Attach and PortForward.
	streams streamService
}

// New builds the server and restores every area's state from disk. Areas
// start in dependency order: images, containers (which pods run their
// infra through), pods; then the container steps restoring found are
// told, the containers' exits watched again, and containers whose pod is
// gone removed.
func New(ctx context.Context, cfg *config.Config, opts Options) (*Server, error) {
	s := &Server{opts: opts, cfg: cfg, events: events.NewBroker[*runtimeapi.ContainerEventResponse](eventBuffer)}
	cg, err := chooseCgroups(cfg)
	if err != nil {
		return nil, err
	}
	s.cgroups = cg
	if err := s.newNRI(); err != nil {
		return nil, err
	}
	if err := s.initImages(ctx); err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	found, err := s.initContainers(ctx)
	if err != nil {
		s.img.close()
		return nil, fmt.Errorf("containers: %w", err)
	}
	if err := s.initPods(ctx); err != nil {
		s.ctr.close()
		s.img.close()
		return nil, fmt.Errorf("pods: %w", err)
	}
	// The container steps restoring found (exits and starts while berthd
	// was down) are told once the pods, whose status their events carry,
	// are back; then the containers' exits are watched again, so a later
	// exit is told after them. NRI is not started yet: plugins learn of
	// these in their synchronization. The events wait in the broker for
	// the first subscribers.
	for _, ch := range found {
		containerNotifier{s}.Changed(ctx, ch)
	}
	s.ctr.mgr.Watch()
	s.removeOrphanContainers(ctx)
	s.events.Open()
	s.initStats()
	if err := s.startNRI(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Register adds both CRI services to g.
func (s *Server) Register(g *grpc.Server) {
	runtimeapi.RegisterRuntimeServiceServer(g, s)
	runtimeapi.RegisterImageServiceServer(g, s)
}

// Close releases what the areas hold, in reverse order. Containers and
// their monitors keep running: they never depend on berthd.
func (s *Server) Close() error {
	s.stopNRI()
	return errors.Join(s.streams.close(), s.ctr.close(), s.pod.close(), s.img.close())
}

// Config returns the current configuration. Callers must not modify it.
func (s *Server) Config() *config.Config {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cfg
}

// SetConfig installs a reloaded configuration. Only reloadable keys take
// effect; berthd decides which (see cmd/berthd).
func (s *Server) SetConfig(cfg *config.Config) {
	s.mu.Lock()
	s.cfg = cfg
	s.mu.Unlock()
}

// PodCIDR is the pod CIDR kubelet last sent through UpdateRuntimeConfig.
func (s *Server) PodCIDR() string {
	s.podCIDRMu.RLock()
	defer s.podCIDRMu.RUnlock()
	return s.podCIDR
}

// binPath returns configured if set, else name next to berthd.
func (s *Server) binPath(configured, name string) string {
	if configured != "" {
		return configured
	}
	return filepath.Join(s.opts.BinDir, name)
}
