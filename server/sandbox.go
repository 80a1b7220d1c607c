package server

import (
	"context"
	"errors"
)

// podService is the pod sandbox state. (Stub until the sandbox area lands.)
type podService struct{}

func (s *Server) initPods(ctx context.Context) error { return nil }

func (p *podService) close() error { return nil }

func (p *podService) count() int { return 0 }

// networkReady returns why pods cannot get a network, or nil.
func (p *podService) networkReady() error {
	return errors.New("pod networking is not built yet")
}
