package server

import (
	"context"

	"github.com/berth-cri/berth/errdefs"
	"github.com/berth-cri/berth/sandbox"
)

// startInfra starts the pod's infra process (berth-pause, through the
// pod's runtime handler) and sets sb.InfraPID and sb.PIDNSPath, which
// RunPodSandbox records. (Stub: the containers area builds it.)
func (s *Server) startInfra(ctx context.Context, sb *sandbox.Sandbox) error {
	return errdefs.Unimplementedf("shared PID namespace (infra process) is not built yet")
}

// stopInfra stops the pod's infra process; nothing to do when none runs.
func (s *Server) stopInfra(ctx context.Context, sb *sandbox.Sandbox) error {
	return nil
}
