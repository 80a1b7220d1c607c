package monitorclient_test

import (
	"context"
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/berth-cri/berth/monitorclient"
)

// The monitor signals the container's init on request (a stop without
// the runtime's kill); an old monitor's refusal is ErrUnsupported.
func TestSignalThroughMonitor(t *testing.T) {
	c := newCtr(t, []string{"sh", "-c", `trap "exit 3" TERM; sleep 1000 & wait`}, nil)
	st := c.start()
	c.run()
	waitFor(t, "the container's sleep", func() bool { return len(childrenOf(st.ContainerPID)) > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := monitorclient.Signal(ctx, c.cfg.ControlSocket, syscall.SIGTERM); err != nil {
		t.Fatalf("Signal: %v", err)
	}
	if e := c.wait(); e.Signal != 0 || e.ExitCode != 3 {
		t.Fatalf("exit %+v, want code 3 from the TERM trap", e)
	}
	// The monitor is gone with its socket: nothing to signal through.
	if err := monitorclient.Signal(ctx, c.cfg.ControlSocket, syscall.SIGKILL); !errors.Is(err, monitorclient.ErrUnsupported) {
		t.Fatalf("Signal after the exit: %v, want ErrUnsupported", err)
	}
	sock := filepath.Join(t.TempDir(), "ctl")
	reqs := serveOldControl(t, sock)
	if err := monitorclient.Signal(ctx, sock, syscall.SIGTERM); !errors.Is(err, monitorclient.ErrUnsupported) {
		t.Fatalf("Signal through an old monitor: %v, want ErrUnsupported", err)
	}
	if req := <-reqs; req != "signal 15" {
		t.Fatalf("the old monitor got %q", req)
	}
}
