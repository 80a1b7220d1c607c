package streaming

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/net/netutil"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	cristreaming "k8s.io/cri-streaming/pkg/streaming"
)

// Config is the [stream] configuration.
type Config struct {
	// Address is the IP address to listen on.
	Address string
	// Port is the TCP port; 0 picks a free one at start (it is in the URLs).
	Port int
	// IdleTimeout closes a session that moved no data for this long.
	IdleTimeout time.Duration
	// MaxConnections caps the open connections, sessions included
	// (DefaultMaxConnections when 0): beyond it, new ones wait in the
	// listen backlog until one closes.
	MaxConnections int
	// RequestTimeout bounds reading a request, and how long a connection
	// may sit between requests (DefaultRequestTimeout when 0). A session's
	// connection, once upgraded, is bounded by IdleTimeout instead.
	RequestTimeout time.Duration
	// TLSCert and TLSKey, both set, serve HTTPS; TLSCA, if also set,
	// requires client certificates signed by it.
	TLSCert, TLSKey, TLSCA string
}

// The bounds of connections that have not (yet) become a session: the
// URL's token is only checked once a request is read, so whoever reaches
// the port can open connections; they are closed when a request is not
// read within DefaultRequestTimeout or none follows within it, and no
// more than DefaultMaxConnections are served at once.
const (
	DefaultMaxConnections = 1024
	DefaultRequestTimeout = 30 * time.Second
)

// Server is a listening streaming server.
type Server struct {
	lib  cristreaming.Server
	hs   *http.Server
	ln   net.Listener
	base *url.URL

	mu    sync.Mutex
	conns map[*watchedConn]struct{}
	done  chan struct{}
}

// New listens on the configured address and builds the server; Serve
// starts answering. A port already taken is an error here, at berthd's
// start, not at the first exec.
func New(cfg Config, b Backend) (*Server, error) {
	tlsCfg, err := tlsConfig(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Address, strconv.Itoa(cfg.Port)))
	if err != nil {
		return nil, fmt.Errorf("stream server: listen: %w", err)
	}
	base := &url.URL{Scheme: "http", Host: urlHost(ln.Addr().(*net.TCPAddr))}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = DefaultMaxConnections
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	ln = netutil.LimitListener(ln, cfg.MaxConnections)
	if tlsCfg != nil {
		base.Scheme = "https"
		ln = tls.NewListener(ln, tlsCfg)
	}
	libCfg := cristreaming.DefaultConfig
	libCfg.Addr = ln.Addr().String()
	libCfg.BaseURL = base
	if cfg.IdleTimeout > 0 {
		libCfg.StreamIdleTimeout = cfg.IdleTimeout
	}
	s := &Server{ln: ln, base: base, conns: map[*watchedConn]struct{}{}, done: make(chan struct{})}
	lib, err := cristreaming.NewServer(libCfg, &runtime{b: b, sessions: s})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("stream server: %w", err)
	}
	s.lib = lib
	// net/http clears these deadlines when the library hijacks a
	// connection for a session.
	s.hs = &http.Server{Handler: s,
		ReadHeaderTimeout: cfg.RequestTimeout,
		ReadTimeout:       cfg.RequestTimeout,
		IdleTimeout:       cfg.RequestTimeout,
	}
	return s, nil
}

// urlHost is the host:port clients use: the listening address, or
// loopback when it listens on every address (berthd's clients, kubelet
// and crictl, run on the node).
func urlHost(a *net.TCPAddr) string {
	ip := a.IP
	switch {
	case ip.Equal(net.IPv4zero):
		ip = net.IPv4(127, 0, 0, 1)
	case ip.Equal(net.IPv6unspecified):
		ip = net.IPv6loopback
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(a.Port))
}

// URL is the server's base URL (scheme, host and the chosen port).
func (s *Server) URL() string { return s.base.String() }

// Serve answers requests until Close. It returns at once.
func (s *Server) Serve() {
	go func() {
		if err := s.hs.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logrus.Errorf("stream server: %v", err)
		}
	}()
}

// Close stops listening and hangs up on every session: their commands
// are killed by their monitors, port-forward connections closed.
func (s *Server) Close() error {
	err := s.hs.Close()
	s.mu.Lock()
	close(s.done)
	conns := make([]*watchedConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	return err
}

// GetExec, GetAttach and GetPortForward return the single-use URL for a
// request the caller has validated (the library checks again).
func (s *Server) GetExec(req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	return s.lib.GetExec(req)
}

func (s *Server) GetAttach(req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	return s.lib.GetAttach(req)
}

func (s *Server) GetPortForward(req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	return s.lib.GetPortForward(req)
}

// ServeHTTP gives each request a context that ends when its client hangs
// up (see conn.go) and hands it to the library.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	s.lib.ServeHTTP(&hijackWatcher{ResponseWriter: w, ctx: ctx, cancel: cancel, s: s}, r.WithContext(ctx))
}

// sessionContext is the context of the session whose client is at addr:
// the library runs each port-forward connection with a background
// context, and a stream only knows its connection's remote address.
func (s *Server) sessionContext(addr net.Addr) (context.Context, bool) {
	if addr == nil {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if a := c.RemoteAddr(); a != nil && a.Network() == addr.Network() && a.String() == addr.String() {
			return c.ctx, true
		}
	}
	return nil, false
}

// track remembers a hijacked connection until it closes; false when the
// server is closing and the connection must not be served.
func (s *Server) track(c *watchedConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
		return false
	default:
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *watchedConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}
