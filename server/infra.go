package server

import (
	"context"
	"fmt"

	"github.com/berth-cri/berth/oci"
	"github.com/berth-cri/berth/sandbox"
)

// startInfra starts the pod's infra process (berth-pause, through the
// pod's runtime handler) and sets sb.InfraPID and sb.PIDNSPath, which
// RunPodSandbox records. The infra is PID 1 of the pod's PID namespace:
// containers in PID mode POD join /proc/<pid>/ns/pid.
func (s *Server) startInfra(ctx context.Context, sb *sandbox.Sandbox) error {
	rt, err := s.ociRuntime(sb.RuntimeHandler)
	if err != nil {
		return err
	}
	pid, err := s.ctr.mgr.StartInfra(ctx, &oci.InfraRequest{
		Pod:       ociPod(sb),
		Runtime:   rt,
		PausePath: s.binPath(s.Config().Runtime.PausePath, "berth-pause"),
	})
	if err != nil {
		return err
	}
	sb.InfraPID = pid
	sb.PIDNSPath = fmt.Sprintf("/proc/%d/ns/pid", pid)
	return nil
}

// stopInfra stops and removes the pod's infra process; nothing to do when
// none runs.
func (s *Server) stopInfra(ctx context.Context, sb *sandbox.Sandbox) error {
	return s.ctr.mgr.StopInfra(ctx, sb.ID)
}
