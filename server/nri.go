package server

import (
	"fmt"

	"github.com/berth-cri/berth/nrihost"
)

// NRI plugins ([nri] enable) see pods and containers through the steps
// the sandbox and oci managers tell server's notifiers (lifecycle.go),
// which call the host (see nrihost). The server makes the host and starts
// it once the managers restored their state.

// newNRI makes the NRI host if the config enables it.
func (s *Server) newNRI() error {
	cfg := s.Config().NRI
	if !cfg.Enable {
		return nil
	}
	h, err := nrihost.New(cfg, s.opts.Version)
	if err != nil {
		return err
	}
	s.nri = h
	return nil
}

// startNRI starts plugins and the NRI socket once pods and containers
// are known, so that each plugin is synchronized with all of them.
func (s *Server) startNRI() error {
	if s.nri == nil {
		return nil
	}
	s.nri.Attach(s.pod.mgr, s.ctr.mgr, s.ctr.host, s.ctr.stopTimeout)
	if err := s.nri.Start(); err != nil {
		return fmt.Errorf("nri: %w", err)
	}
	return nil
}

func (s *Server) stopNRI() {
	if s.nri != nil {
		s.nri.Stop()
	}
}

// blockPluginSync is held across RunPodSandbox and CreateContainer: a
// plugin connecting meanwhile is synchronized after them, so it learns
// of their pod or container one way or the other.
func (s *Server) blockPluginSync() (release func()) {
	if s.nri == nil {
		return func() {}
	}
	return s.nri.BlockSync()
}
