package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/test/testimage"
)

// Network names chosen not to collide with contrib's berth0/10.87.0.0/16
// nor with the e2e tests running on the same machine.
const (
	cniNetwork = "berthct"
	cniBridge  = "berthct0"
	cniSubnet  = "10.89.0.0/16"
	runcPath   = "/usr/sbin/runc"
)

// daemon is berthd on private roots, with its config and CNI network.
type daemon struct {
	dir          string // /tmp/berthct.XXXX: roots, socket, config; short for socket paths
	socket       string
	config       string
	ipamDir      string // host-local's allocations
	cgroupParent string
	log          string // berthd's output
	bindir       string

	cmd  *exec.Cmd
	done chan error
	conn *grpc.ClientConn
	rt   runtimeapi.RuntimeServiceClient
}

func newDaemon(bindir, logPath string) (*daemon, error) {
	dir, err := os.MkdirTemp("/tmp", "berthct.")
	if err != nil {
		return nil, err
	}
	return &daemon{
		dir:          dir,
		socket:       filepath.Join(dir, "berth.sock"),
		config:       filepath.Join(dir, "berth.toml"),
		ipamDir:      filepath.Join(dir, "ipam"),
		cgroupParent: fmt.Sprintf("/berthct-%08x", rand.Uint32()),
		log:          logPath,
		bindir:       bindir,
	}, nil
}

// writeConfig writes berth.toml, registries.conf (every upstream
// rewritten to reg, by location: no mirror, so no fallback to the real
// host) and the CNI network.
func (d *daemon) writeConfig(reg *testimage.Registry, debug bool) error {
	rewrites := map[string]string{}
	plainHTTP := []string{reg.Host}
	for _, u := range upstreams {
		rewrites[u] = reg.Host + "/" + u
		plainHTTP = append(plainHTTP, rewrites[u])
	}
	regConf := filepath.Join(d.dir, "registries.conf")
	conf := testimage.RegistriesConf(testimage.ConfOptions{
		Insecure: plainHTTP, Search: []string{"docker.io"}, Rewrites: rewrites,
	})
	if err := os.WriteFile(regConf, []byte(conf), 0o644); err != nil {
		return err
	}
	cniDir := filepath.Join(d.dir, "cni")
	if err := os.MkdirAll(cniDir, 0o755); err != nil {
		return err
	}
	// portmap's snat makes hostPorts answer on 127.0.0.1 (it turns on
	// route_localnet on the bridge), which critest's port specs use.
	cni := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": %q,
  "plugins": [
    {
      "type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": true, "hairpinMode": true,
      "ipam": { "type": "host-local", "dataDir": %q, "ranges": [[{ "subnet": %q }]], "routes": [{ "dst": "0.0.0.0/0" }] }
    },
    { "type": "portmap", "capabilities": { "portMappings": true }, "snat": true },
    { "type": "loopback" }
  ]
}
`, cniNetwork, cniBridge, d.ipamDir, cniSubnet)
	if err := os.WriteFile(filepath.Join(cniDir, "10-berthct.conflist"), []byte(cni), 0o644); err != nil {
		return err
	}
	level := "info"
	if debug {
		level = "debug"
	}
	var handlers strings.Builder
	fmt.Fprintf(&handlers, "[runtime.handlers.berth]\npath = %q\n", filepath.Join(d.bindir, "berth-runner"))
	if _, err := os.Stat(runcPath); err == nil {
		fmt.Fprintf(&handlers, "[runtime.handlers.runc]\npath = %q\n", runcPath)
	}
	toml := fmt.Sprintf(`listen = "unix://%s"
root = %q
runroot = %q

[log]
level = %q

[runtime]
default = "berth"
monitor_path = %q
pause_path = %q
cgroup_parent = %q

%s
[image]
registries_conf = %q

[network]
conf_dir = %q

# critest's user namespace specs map node ids from 1000: below the
# default floor (65536), kept for nodes.
[pod]
userns_min_host_id = 1000

# NRI on a private socket, no pre-installed plugins: critest's NRI specs
# connect their own plugin to it (-nri-socket). Its synchronization specs
# hold a plugin's Synchronize open for 2s, the default request timeout,
# after which a plugin is disconnected; so the timeout is above that.
[nri]
enable = true
socket_path = %q
plugin_path = %q
plugin_config_path = %q
request_timeout = "10s"
`, d.socket, filepath.Join(d.dir, "root"), filepath.Join(d.dir, "run"), level,
		filepath.Join(d.bindir, "berth-monitor"), filepath.Join(d.bindir, "berth-pause"),
		d.cgroupParent, handlers.String(), regConf, cniDir,
		d.nriSocket(), filepath.Join(d.dir, "nri-plugins"), filepath.Join(d.dir, "nri-conf"))
	if err := os.WriteFile(d.config, []byte(toml), 0o644); err != nil {
		return err
	}
	crictl := fmt.Sprintf("runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 60\n", d.socket, d.socket)
	return os.WriteFile(filepath.Join(d.dir, "crictl.yaml"), []byte(crictl), 0o644)
}

func (d *daemon) nriSocket() string { return filepath.Join(d.dir, "nri.sock") }

// start runs berthd and waits until it answers Version.
func (d *daemon) start() error {
	logf, err := os.OpenFile(d.log, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	d.cmd = exec.Command(filepath.Join(d.bindir, "berthd"), "--config", d.config)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	// Its own process group: a ^C to the harness reaches the harness,
	// which then stops berthd in order.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		return err
	}
	d.done = make(chan error, 1)
	go func() { d.done <- d.cmd.Wait() }()
	conn, err := grpc.NewClient("unix://"+d.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	d.conn = conn
	d.rt = runtimeapi.NewRuntimeServiceClient(conn)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-d.done:
			d.done <- err
			return fmt.Errorf("berthd exited before serving: %v (log: %s)", err, d.log)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := d.rt.Version(ctx, &runtimeapi.VersionRequest{})
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("berthd not serving on %s after 60s (log: %s)", d.socket, d.log)
}

// stop sends SIGTERM and waits; SIGKILL after 30s.
func (d *daemon) stop() error {
	if d.conn != nil {
		d.conn.Close()
		d.conn = nil
	}
	if d.cmd == nil {
		return nil
	}
	defer func() { d.cmd = nil }()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		return err
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
		return fmt.Errorf("berthd did not exit 30s after SIGTERM (killed)")
	}
}
