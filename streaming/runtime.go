package streaming

import (
	"context"
	"fmt"
	"io"
	"net"

	remotecommand "k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/berth-cri/berth/monitorclient"
	"github.com/berth-cri/berth/oci"
)

// Backend is what the streaming server needs from berthd.
type Backend struct {
	// Containers runs exec sessions and attaches.
	Containers *oci.Manager
	// PodNetNS returns the pinned network namespace of a ready pod, or ""
	// for a pod on the host's network.
	PodNetNS func(podID string) (string, error)
}

// runtime is the library's Runtime on top of the Backend.
type runtime struct {
	b        Backend
	sessions *Server
}

func (r *runtime) Exec(ctx context.Context, containerID string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	c, err := r.b.Containers.Get(containerID)
	if err != nil {
		return err
	}
	sizes, stop := convertSizes(resize)
	defer stop()
	code, err := r.b.Containers.ExecStream(ctx, c, cmd, streamIO(in, out, errOut, tty, sizes))
	if err != nil {
		return err
	}
	if code != 0 {
		// The library reports an ExitError as the NonZeroExitCode status,
		// which kubectl shows as "command terminated with exit code N".
		return utilexec.CodeExitError{Err: fmt.Errorf("exit code %d", code), Code: int(code)}
	}
	return nil
}

func (r *runtime) Attach(ctx context.Context, containerID string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	c, err := r.b.Containers.Get(containerID)
	if err != nil {
		return err
	}
	sizes, stop := convertSizes(resize)
	defer stop()
	return r.b.Containers.Attach(ctx, c, streamIO(in, out, errOut, tty, sizes))
}

func (r *runtime) PortForward(ctx context.Context, podID string, port int32, stream io.ReadWriteCloser) error {
	ns, err := r.b.PodNetNS(podID)
	if err != nil {
		return err
	}
	// End with the client's connection, not only with the pod's side.
	if ra, ok := stream.(interface{ RemoteAddr() net.Addr }); ok {
		if sctx, ok := r.sessions.sessionContext(ra.RemoteAddr()); ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(ctx)
			defer cancel()
			stop := context.AfterFunc(sctx, cancel)
			defer stop()
		}
	}
	return forward(ctx, ns, port, stream)
}

// streamIO turns the library's streams into oci's, keeping absent ones
// nil (a nil io.WriteCloser must not become a non-nil io.Writer).
func streamIO(in io.Reader, out, errOut io.WriteCloser, tty bool, sizes <-chan monitorclient.Size) oci.StreamIO {
	s := oci.StreamIO{Stdin: in, Tty: tty, Resize: sizes}
	if out != nil {
		s.Stdout = out
	}
	if errOut != nil {
		s.Stderr = errOut
	}
	return s
}

// convertSizes relays the library's terminal sizes as the monitor's until
// stop is called or the library closes its channel.
func convertSizes(in <-chan remotecommand.TerminalSize) (<-chan monitorclient.Size, func()) {
	if in == nil {
		return nil, func() {}
	}
	out := make(chan monitorclient.Size, 1)
	done := make(chan struct{})
	go func() {
		defer close(out)
		for {
			select {
			case sz, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- monitorclient.Size{Width: sz.Width, Height: sz.Height}:
				case <-done:
					return
				}
			case <-done:
				return
			}
		}
	}()
	return out, func() { close(done) }
}
