package server

import (
	"context"
	"errors"

	"github.com/sirupsen/logrus"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/errdefs"
	"github.com/berth-cri/berth/oci"
	"github.com/berth-cri/berth/sandbox"
	"github.com/berth-cri/berth/streaming"
)

// streamService is the streaming server the Exec, Attach and PortForward
// URLs point at; nil until berthd calls StartStreaming.
type streamService struct {
	srv *streaming.Server
}

// StartStreaming listens on the [stream] address and serves the
// streaming endpoints until Close. It returns the server's base URL.
func (s *Server) StartStreaming() (string, error) {
	c := s.Config().Stream
	srv, err := streaming.New(streaming.Config{
		Address:        c.Address,
		Port:           c.Port,
		IdleTimeout:    c.IdleTimeout.Duration,
		MaxConnections: c.MaxConnections,
		RequestTimeout: c.RequestTimeout.Duration,
		TLSCert:        c.TLSCert,
		TLSKey:         c.TLSKey,
		TLSCA:          c.TLSCA,
	}, streaming.Backend{Containers: s.ctr.mgr, PodNetNS: s.podNetNS})
	if err != nil {
		return "", err
	}
	srv.Serve()
	s.streams.srv = srv
	return srv.URL(), nil
}

func (st *streamService) close() error {
	if st.srv == nil {
		return nil
	}
	return st.srv.Close()
}

func (st *streamService) server() (*streaming.Server, error) {
	if st.srv == nil {
		return nil, errdefs.Unavailablef("the streaming server is not running")
	}
	return st.srv, nil
}

// Exec returns a URL that runs cmd in a running container with the
// client's stdio (kubectl exec, crictl exec -it).
func (s *Server) Exec(ctx context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	if len(req.GetCmd()) == 0 || req.GetCmd()[0] == "" {
		return nil, errdefs.Invalidf("cmd is empty")
	}
	if err := validateStdio(req.GetTty(), req.GetStdin(), req.GetStdout(), req.GetStderr()); err != nil {
		return nil, err
	}
	c, err := s.runningContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	srv, err := s.streams.server()
	if err != nil {
		return nil, err
	}
	r := &runtimeapi.ExecRequest{ContainerId: c.ID(), Cmd: req.GetCmd(), Tty: req.GetTty(),
		Stdin: req.GetStdin(), Stdout: req.GetStdout(), Stderr: req.GetStderr()}
	return srv.GetExec(r)
}

// Attach returns a URL that joins a running container's stdio.
func (s *Server) Attach(ctx context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	if err := validateStdio(req.GetTty(), req.GetStdin(), req.GetStdout(), req.GetStderr()); err != nil {
		return nil, err
	}
	c, err := s.runningContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	srv, err := s.streams.server()
	if err != nil {
		return nil, err
	}
	r := &runtimeapi.AttachRequest{ContainerId: c.ID(), Tty: req.GetTty(),
		Stdin: req.GetStdin(), Stdout: req.GetStdout(), Stderr: req.GetStderr()}
	return srv.GetAttach(r)
}

// PortForward returns a URL that forwards connections to ports of a
// ready pod.
func (s *Server) PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	if req.GetPodSandboxId() == "" {
		return nil, errdefs.Invalidf("pod_sandbox_id is empty")
	}
	for _, p := range req.GetPort() {
		if p <= 0 || p > 65535 {
			return nil, errdefs.Invalidf("port %d is out of range", p)
		}
	}
	sb, err := s.readyPod(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	srv, err := s.streams.server()
	if err != nil {
		return nil, err
	}
	return srv.GetPortForward(&runtimeapi.PortForwardRequest{PodSandboxId: sb.ID, Port: req.GetPort()})
}

// validateStdio checks the stream flags as kubelet does: a tty carries
// stderr on stdout, and a session needs at least one stream.
func validateStdio(tty, stdin, stdout, stderr bool) error {
	if tty && stderr {
		return errdefs.Invalidf("tty and stderr cannot both be set: a terminal has one output stream")
	}
	if !stdin && !stdout && !stderr {
		return errdefs.Invalidf("one of stdin, stdout or stderr must be set")
	}
	return nil
}

// runningContainer finds a CRI container that is running.
func (s *Server) runningContainer(id string) (*oci.Container, error) {
	if id == "" {
		return nil, errdefs.Invalidf("container_id is empty")
	}
	c, err := s.ctr.get(id)
	if err != nil {
		return nil, err
	}
	if st := c.Record().State; st != oci.StateRunning {
		return nil, errdefs.FailedPreconditionf("container %s is %s, not running", c.ID(), st)
	}
	return c, nil
}

// readyPod finds a pod whose network is up.
func (s *Server) readyPod(id string) (*sandbox.Sandbox, error) {
	sb, err := s.pod.get(id)
	if err != nil {
		return nil, err
	}
	if sb.State != sandbox.StateReady {
		return nil, errdefs.FailedPreconditionf("pod %s is %s, not ready", sb.ID, sb.State)
	}
	return sb, nil
}

// podNetNS is the streaming server's way to the pod's network: its
// pinned namespace, or "" for a host-network pod.
func (s *Server) podNetNS(id string) (string, error) {
	sb, err := s.readyPod(id)
	if err != nil {
		return "", err
	}
	if sb.NetNSPath == "" && sb.NamespaceOptions().GetNetwork() != runtimeapi.NamespaceMode_NODE {
		// Not host network, yet nothing pinned: never dial in the host's
		// namespace by mistake.
		return "", errors.New("pod " + sb.ID + " has no network namespace")
	}
	logrus.WithField("pod", sb.ID).Debugf("port-forward in %q", sb.NetNSPath)
	return sb.NetNSPath, nil
}
