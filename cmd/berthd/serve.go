package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"

	"github.com/berth-cri/berth/config"
	"github.com/berth-cri/berth/server"
)

// shutdownGrace bounds how long in-flight RPCs may run after SIGTERM.
const shutdownGrace = 10 * time.Second

func serve(f *flags, cfg *config.Config) error {
	if err := setupLogging(cfg.Log); err != nil {
		return err
	}
	tuneGC(cfg.Memory)
	socket := strings.TrimPrefix(cfg.Listen, "unix://")

	// Two locks: one per state root, one per socket. A second berthd on
	// either fails here, before it touches anything the first one owns.
	for _, d := range []string{cfg.Root, cfg.RunRoot} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	rootLock, err := lockFile(filepath.Join(cfg.Root, "berthd.lock"), "root "+cfg.Root)
	if err != nil {
		return err
	}
	defer rootLock.Close()
	sockLock, err := lockFile(socket+".lock", "socket "+socket)
	if err != nil {
		return err
	}
	defer sockLock.Close()
	// Before the server is made, so that a bad address changes nothing
	// and a slow start-up can be profiled.
	if cfg.Debug.Address != "" {
		stop, err := serveDebug(cfg.Debug.Address)
		if err != nil {
			return err
		}
		defer stop()
	}

	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	ctx := context.Background()
	srv, err := server.New(ctx, cfg, server.Options{Version: version, BinDir: filepath.Dir(exe)})
	if err != nil {
		return err
	}
	defer srv.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := server.NewMetrics(reg, srv)
	unary, stream := server.Interceptors(metrics)
	unaries := []grpc.UnaryServerInterceptor{unary}
	var mem *memoryReturner
	if after := cfg.Memory.ReleaseAfterIdle.Duration; after > 0 {
		mem = newMemoryReturner()
		unaries = append(unaries, newReleaser(after, mem.afterWork).unary)
	}
	g := grpc.NewServer(grpc.ChainUnaryInterceptor(unaries...), grpc.ChainStreamInterceptor(stream),
		grpc.MaxRecvMsgSize(server.MaxMessageSize), grpc.MaxSendMsgSize(server.MaxMessageSize))
	srv.Register(g)
	streamURL, err := srv.StartStreaming()
	if err != nil {
		return err
	}

	ln, err := listenUnix(socket)
	if err != nil {
		return err
	}
	defer os.Remove(socket)

	if cfg.Metrics.Address != "" {
		stop, err := serveMetrics(cfg.Metrics.Address, reg)
		if err != nil {
			return err
		}
		defer stop()
	}

	// Signals are ours before the first client can see the socket: a
	// supervisor that stops berthd as soon as it answers must get a clean
	// shutdown, not the default action.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	errc := make(chan error, 1)
	go func() { errc <- g.Serve(ln) }()
	logrus.WithFields(logrus.Fields{"version": version, "listen": cfg.Listen, "root": cfg.Root, "runroot": cfg.RunRoot, "stream": streamURL}).Info("berthd serving")
	daemon.SdNotify(false, daemon.SdNotifyReady)
	if mem != nil {
		mem.settle()
	}

	for {
		select {
		case err := <-errc:
			return fmt.Errorf("serve %s: %w", socket, err)
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				reload(f, srv)
				continue
			}
			logrus.Infof("%s: stopping", sig)
			daemon.SdNotify(false, daemon.SdNotifyStopping)
			stopGracefully(g)
			return nil
		}
	}
}

// listenUnix replaces a stale socket (we hold the socket lock, so nobody
// serves on it) and creates the new one private to root: the umask is set
// around bind so there is no window where the socket is world-accessible.
func listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
		return nil, fmt.Errorf("create socket dir: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod %s: %w", path, err)
	}
	return ln, nil
}

// stopGracefully lets in-flight RPCs finish, for at most shutdownGrace.
func stopGracefully(g *grpc.Server) {
	done := make(chan struct{})
	go func() { g.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(shutdownGrace):
		logrus.Warnf("in-flight RPCs still running after %s: closing them", shutdownGrace)
		g.Stop()
	}
}

func serveMetrics(addr string, reg *prometheus.Registry) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	logrus.Infof("metrics on http://%s/metrics", ln.Addr())
	return func() { hs.Close() }, nil
}
