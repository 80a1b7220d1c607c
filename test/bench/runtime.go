package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/config"
	"github.com/berth-cri/berth/test/launch"
)

// network is the bench's, the same bridge for both runtimes (each with
// its own IPAM store, so one runtime's leases never shadow the other's):
// a bridge and subnet of its own, so it collides neither with contrib's
// berth0 nor with the tests running next to it. It is bare: no loopback
// plugin, which both bring lo up without (berthd in-process, containerd
// by running the loopback plugin on a network of its own).
var network = launch.Network{Name: "berthbench", Bridge: "berthbn0", Subnet: "10.91.0.0/16", Bare: true}

const cniBinDir = "/usr/lib/cni"

// runtime is one CRI server under measurement, on private roots.
type runtime struct {
	name   string
	dir    string // everything it writes: roots, socket, config, log
	socket string
	// role names what a process is to this runtime ("monitor", "pause")
	// or "" when it is not its.
	role func(p proc) string

	// metrics is the daemon's Prometheus address (host:port), where
	// berthd's per-step times are read; empty when it has none.
	metrics string

	// start runs the daemon and waits until it serves, setting rt and
	// img; stop ends it and cleans the node, its error naming what the
	// daemon left behind; pid is the running daemon's.
	start func() error
	stop  func() error
	pid   func() int

	rt  runtimeapi.RuntimeServiceClient
	img runtimeapi.ImageServiceClient
}

// newBerth prepares a berthd of this tree through test/launch, as the
// tests and lanes start it, with its metrics on a free port.
func newBerth(bindir, registries string) (*runtime, error) {
	metrics, err := freeAddr()
	if err != nil {
		return nil, err
	}
	d, err := launch.New(launch.Options{
		BinDir:     bindir,
		Prefix:     "berthbench",
		Network:    network,
		Registries: registries,
		Configure:  func(c *config.Config, _ *launch.Daemon) { c.Metrics.Address = metrics },
	})
	if err != nil {
		if d != nil {
			d.Teardown()
		}
		return nil, err
	}
	r := &runtime{name: "Berth", dir: d.Dir, socket: d.Socket, metrics: metrics, stop: d.Teardown, pid: d.PID}
	r.start = func() error {
		if err := d.Start(); err != nil {
			return err
		}
		r.rt, r.img = d.Runtime, d.Image
		return nil
	}
	// The infra process is berth-pause bind-mounted at /pause in the
	// infra's root, so its exe reads "/pause": it is known by its parent,
	// one of this berthd's monitors.
	monitor := filepath.Join(bindir, "berth-monitor")
	monitors := map[int]bool{}
	r.role = func(p proc) string {
		switch {
		case p.exe == monitor:
			monitors[p.pid] = true
			return "berth-monitor"
		case monitors[p.ppid] && p.comm == "pause":
			return "pause (berth-pause)"
		}
		return ""
	}
	return r, nil
}

func newContainerd(bin, registry, pauseRef string) (*runtime, error) {
	dir, err := os.MkdirTemp("/tmp", "bbc.")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "cni"), 0o755); err != nil {
		return nil, err
	}
	conf := network.Conflist(filepath.Join(dir, "ipam"))
	if err := os.WriteFile(filepath.Join(dir, "cni", "10-"+network.Name+".conflist"), []byte(conf), 0o644); err != nil {
		return nil, err
	}
	r := &runtime{name: "containerd", dir: dir, socket: filepath.Join(dir, "containerd.sock")}
	// The registry is a mirror of itself over plain HTTP (1.6's way of
	// speaking HTTP to a registry); restrict_oom_score_adj because root
	// here lacks CAP_SYS_RESOURCE; the stream server on a random port so
	// two runs never collide on 10010.
	toml := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = %q

[ttrpc]
  address = %q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors.%q]
    endpoint = ["http://%s"]
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), r.socket, r.socket+".ttrpc",
		pauseRef, cniBinDir, filepath.Join(dir, "cni"), registry, registry)
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(toml), 0o644); err != nil {
		return nil, err
	}
	var srv *launch.Process
	var conn *grpc.ClientConn
	r.start = func() error {
		log := filepath.Join(dir, "daemon.log")
		var err error
		if srv, err = launch.StartProcess(exec.Command(bin, "--config", cfg), log, false); err != nil {
			return err
		}
		if err := srv.WaitServing(r.socket, 60*time.Second); err != nil {
			return fmt.Errorf("containerd %v (log %s)", err, log)
		}
		if conn, err = grpc.NewClient("unix://"+r.socket, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
			return err
		}
		r.rt, r.img = runtimeapi.NewRuntimeServiceClient(conn), runtimeapi.NewImageServiceClient(conn)
		return nil
	}
	r.pid = func() int { return srv.PID() }
	// containerd's leftovers are not the bench's to judge: its directory
	// is unmounted and removed, and the shared bridge goes.
	r.stop = func() error {
		if conn != nil {
			conn.Close()
		}
		var err error
		if srv != nil {
			err = srv.Signal(syscall.SIGTERM, 30*time.Second)
		}
		network.RemoveBridge()
		return errors.Join(err, launch.RemoveDir(dir))
	}
	shim := "/usr/bin/containerd-shim-runc-v2"
	shims := map[int]bool{}
	r.role = func(p proc) string {
		switch {
		case p.exe == shim && strings.Contains(p.cmdline, r.socket):
			shims[p.pid] = true
			return "containerd-shim"
		case shims[p.ppid] && p.comm == "pause":
			return "pause"
		}
		return ""
	}
	return r, nil
}

func (r *runtime) pull(ref string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := r.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	if err != nil {
		return fmt.Errorf("%s: pull %s: %w", r.name, ref, err)
	}
	return nil
}
