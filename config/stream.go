package config

import (
	"fmt"
	"net"
	"path/filepath"
	"time"
)

// StreamConfig is the streaming server that Exec, Attach and PortForward
// URLs point at. It is read at start only.
type StreamConfig struct {
	// Address is the IP address to listen on. The server runs commands
	// in containers for whoever holds a URL, so it stays on loopback
	// unless kubelet reaches it from elsewhere (then use TLS).
	Address string `toml:"address"`
	// Port is the TCP port; 0 picks a free port at start.
	Port int `toml:"port"`
	// IdleTimeout closes a session that moved no data for this long.
	IdleTimeout Duration `toml:"idle_timeout"`
	// MaxConnections caps the server's open connections, sessions
	// included: who reaches the port can open connections before any
	// token is checked.
	MaxConnections int `toml:"max_connections"`
	// RequestTimeout closes a connection whose request is not read
	// within it, or that sits this long between requests.
	RequestTimeout Duration `toml:"request_timeout"`
	// TLSCert and TLSKey serve HTTPS; with TLSCA clients must present a
	// certificate it signed.
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	TLSCA   string `toml:"tls_ca"`
}

func defaultStream() StreamConfig {
	// kubelet's own streaming idle timeout.
	return StreamConfig{Address: "127.0.0.1", IdleTimeout: Duration{4 * time.Hour},
		MaxConnections: 1024, RequestTimeout: Duration{30 * time.Second}}
}

func (s *StreamConfig) validate() error {
	if net.ParseIP(s.Address) == nil {
		return fmt.Errorf("key stream.address: %q is not an IP address", s.Address)
	}
	if s.Port < 0 || s.Port > 65535 {
		return fmt.Errorf("key stream.port: %d is not a TCP port (0 picks a free one)", s.Port)
	}
	if s.IdleTimeout.Duration <= 0 {
		return fmt.Errorf("key stream.idle_timeout: %s is not positive", s.IdleTimeout)
	}
	if s.MaxConnections <= 0 {
		return fmt.Errorf("key stream.max_connections: %d is not positive", s.MaxConnections)
	}
	if s.RequestTimeout.Duration <= 0 {
		return fmt.Errorf("key stream.request_timeout: %s is not positive", s.RequestTimeout)
	}
	for key, p := range map[string]string{"tls_cert": s.TLSCert, "tls_key": s.TLSKey, "tls_ca": s.TLSCA} {
		if p != "" && !filepath.IsAbs(p) {
			return fmt.Errorf("key stream.%s: %q is not an absolute path", key, p)
		}
	}
	if (s.TLSCert == "") != (s.TLSKey == "") {
		return fmt.Errorf("key stream.tls_cert, stream.tls_key: set both or neither")
	}
	if s.TLSCA != "" && s.TLSCert == "" {
		return fmt.Errorf("key stream.tls_ca: needs stream.tls_cert and stream.tls_key")
	}
	return nil
}
