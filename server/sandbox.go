package server

import (
	"context"
	"errors"

	"github.com/berth-cri/berth/sandbox"
)

// podService is the pod sandbox state: a sandbox.Manager, which does the
// work. The RPCs are in sandbox_run.go, sandbox_stop.go and
// sandbox_status.go.
type podService struct {
	mgr *sandbox.Manager
}

// initPods restores every pod from disk (see sandbox.New). The container
// manager is up already: pods stop and watch their infra through it.
func (s *Server) initPods(ctx context.Context) error {
	cfg := s.Config()
	mgr, err := sandbox.New(ctx, sandbox.Options{
		Root:           cfg.Root,
		RunRoot:        cfg.RunRoot,
		CgroupParent:   cfg.Runtime.CgroupParent,
		ShmSize:        cfg.Pod.ShmSize,
		HostResolvConf: cfg.Pod.ResolvConf,
		Network: sandbox.NetworkOptions{
			ConfDir:    cfg.Network.ConfDir,
			PluginDirs: cfg.Network.PluginDirs,
			CacheDir:   cfg.Network.CacheDir,
		},
		Infra: infraRunner{s},
	})
	if err != nil {
		return err
	}
	s.pod.mgr = mgr
	return nil
}

func (p *podService) close() error {
	if p.mgr == nil {
		return nil
	}
	return p.mgr.Close()
}

func (p *podService) count() int {
	if p.mgr == nil {
		return 0
	}
	return p.mgr.Count()
}

// networkReady returns why pods cannot get a network, or nil.
func (p *podService) networkReady() error {
	if p.mgr == nil {
		return errors.New("pod sandboxes are not initialized")
	}
	return p.mgr.NetworkStatus()
}

// get returns a copy of the pod whose id is idOrPrefix or starts with it;
// the error is marked NotFound for an unknown id.
func (p *podService) get(idOrPrefix string) (*sandbox.Sandbox, error) {
	return p.mgr.Get(idOrPrefix)
}
