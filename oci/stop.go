package oci

import (
	"context"
	"errors"
	"syscall"

	"github.com/berth-cri/berth/monitorclient"
)

// signalContainer sends StopContainer's signals: the stop signal, then
// SIGKILL. Its monitor sends one to the container's init, its child (so
// the pid is certain), which spares the runtime's `kill` exec: a stop
// then costs one runtime call, the exit watcher's delete. The runtime
// sends it where the monitor does not take the request (one from an
// older berthd), where every process of the container is meant (all: a
// shared PID namespace, where the init's death does not take the rest
// along, and only the runtime knows the container's cgroup), and for a VM
// runtime, whose container process is inside the VM: the monitor's child
// is the runtime's process on the host, not the container's init. An init
// already gone is no error, as the runtime's kill of an exited container
// is not one the callers act on.
func signalContainer(ctx context.Context, c *Container, rec Record, sig syscall.Signal, all bool) error {
	if !all && !rec.Runtime.VM {
		err := monitorclient.Signal(ctx, c.paths.control(), sig)
		if errors.Is(err, monitorclient.ErrExited) {
			return nil
		}
		if !errors.Is(err, monitorclient.ErrUnsupported) {
			return err
		}
		logFor(rec.ID).Debugf("signal %d through the runtime: %v", int(sig), err)
	}
	return rec.Runtime.Kill(ctx, rec.ID, sig, all)
}
