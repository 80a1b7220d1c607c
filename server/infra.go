package server

import (
	"context"

	"github.com/berth-cri/berth/oci"
	"github.com/berth-cri/berth/sandbox"
)

// infraRunner runs the infra processes the sandbox package decides pods
// need, through the container manager (berth-pause under the pod's
// runtime handler). sandbox gets it at construction and alone starts,
// watches and stops infras.
type infraRunner struct{ s *Server }

func (r infraRunner) Start(ctx context.Context, sb *sandbox.Sandbox) (*sandbox.Infra, error) {
	rt, err := r.s.ociRuntime(sb.RuntimeHandler)
	if err != nil {
		return nil, err
	}
	inf, err := r.s.ctr.mgr.StartInfra(ctx, &oci.InfraRequest{
		Pod:       ociPod(sb),
		Runtime:   rt,
		PausePath: r.s.binPath(r.s.Config().Runtime.PausePath, "berth-pause"),
	})
	if err != nil {
		return nil, err
	}
	return &sandbox.Infra{PID: inf.PID, PIDNamespace: inf.PIDNamespace, Exited: inf.Exited}, nil
}

func (r infraRunner) Find(podID string) (*sandbox.Infra, error) {
	inf, err := r.s.ctr.mgr.FindInfra(podID)
	if err != nil {
		return nil, err
	}
	return &sandbox.Infra{PID: inf.PID, PIDNamespace: inf.PIDNamespace, Exited: inf.Exited}, nil
}

func (r infraRunner) Stop(ctx context.Context, podID string) error {
	return r.s.ctr.mgr.StopInfra(ctx, podID)
}
