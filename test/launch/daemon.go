package launch

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/config"
)

// Network is a lane's own CNI bridge network, named so that lanes and the
// e2e tests running on one machine never share a bridge or a subnet.
type Network struct {
	Name, Bridge, Subnet string
}

// Options says how a lane wants its berthd.
type Options struct {
	// BinDir holds berthd and its helpers (make build).
	BinDir string
	// Log is the file berthd's output goes to.
	Log string
	// Prefix names the temporary directory (/tmp/<prefix>.XXXX) and the
	// pod cgroup parent; short, since socket paths live under it.
	Prefix string
	// Network is the lane's CNI network.
	Network Network
	// Registries is a registries.conf for berthd (testimage.RegistriesConf).
	Registries string
	// DefaultRuntime is the handler used when a request names none:
	// "berth" (berth-runner), "runc" or "crun". Every runtime found on
	// the host is configured as a handler of its name either way.
	DefaultRuntime string
	// CgroupDriver is "cgroupfs" or "systemd"; empty keeps berthd's default.
	CgroupDriver string
	// Debug logs at debug level.
	Debug bool
	// Configure, if set, changes the config last (NRI, timeouts, ...).
	Configure func(c *config.Config, d *Daemon)
}

// Runtimes are the handlers a lane can choose as its default, by name.
var Runtimes = map[string]string{
	"runc": "/usr/sbin/runc",
	"crun": "/usr/bin/crun",
}

// Daemon is one berthd on private roots.
type Daemon struct {
	Dir          string // /tmp/<prefix>.XXXX: roots, socket, config
	Socket       string
	Config       string // berth.toml
	CgroupParent string
	opts         Options

	cmd  *exec.Cmd
	done chan error
	conn *grpc.ClientConn
	// Runtime is a connected client once Start returned.
	Runtime runtimeapi.RuntimeServiceClient
}

// New makes the daemon's directory and writes its config, registries.conf,
// CNI network and crictl.yaml. Call Teardown whatever happens next.
func New(o Options) (*Daemon, error) {
	if o.Prefix == "" {
		o.Prefix = "berthlane"
	}
	if o.DefaultRuntime == "" {
		o.DefaultRuntime = "berth"
	}
	dir, err := os.MkdirTemp("/tmp", o.Prefix+".")
	if err != nil {
		return nil, err
	}
	d := &Daemon{
		Dir:    dir,
		Socket: filepath.Join(dir, "berth.sock"),
		Config: filepath.Join(dir, "berth.toml"),
		opts:   o,
	}
	// A systemd slice's name is its place in the tree ("a-b.slice" is
	// inside "a.slice"), so the random part has no dash.
	if o.CgroupDriver == "systemd" {
		d.CgroupParent = fmt.Sprintf("%s%08x.slice", o.Prefix, rand.Uint32())
	} else {
		d.CgroupParent = fmt.Sprintf("/%s-%08x", o.Prefix, rand.Uint32())
	}
	if err := d.writeFiles(); err != nil {
		return d, err
	}
	return d, nil
}

// Path is a path inside the daemon's directory.
func (d *Daemon) Path(elem ...string) string {
	return filepath.Join(append([]string{d.Dir}, elem...)...)
}

// CrictlConfig is a crictl.yaml pointing at this daemon.
func (d *Daemon) CrictlConfig() string { return d.Path("crictl.yaml") }

// IPAMDir is where host-local keeps the lane network's allocations.
func (d *Daemon) IPAMDir() string { return d.Path("ipam") }

// Start runs berthd and waits until it answers Version.
func (d *Daemon) Start() error {
	logf, err := os.OpenFile(d.opts.Log, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	d.cmd = exec.Command(filepath.Join(d.opts.BinDir, "berthd"), "--config", d.Config)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	// Its own process group: a ^C to the lane reaches the lane, which
	// then stops berthd in order.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		return err
	}
	d.done = make(chan error, 1)
	go func() { d.done <- d.cmd.Wait() }()
	conn, err := grpc.NewClient("unix://"+d.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	d.conn = conn
	d.Runtime = runtimeapi.NewRuntimeServiceClient(conn)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-d.done:
			d.done <- err
			return fmt.Errorf("berthd exited before serving: %v (log: %s)", err, d.opts.Log)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := d.Runtime.Version(ctx, &runtimeapi.VersionRequest{})
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("berthd not serving on %s after 60s (log: %s)", d.Socket, d.opts.Log)
}

// Stop sends SIGTERM and waits; SIGKILL after 30s.
func (d *Daemon) Stop() error {
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
		return errors.New("berthd did not exit 30s after SIGTERM (killed)")
	}
}

// Teardown removes what the suite left through the CRI, stops berthd,
// checks the host for leftovers and cleans it, so the next run (and the
// other tests on this machine) start clean. Leftovers are an error,
// each printed as "LEFT BEHIND: ...".
func (d *Daemon) Teardown() error {
	var left []string
	if d.Runtime != nil && d.cmd != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		left = append(left, d.criLeftovers(ctx)...)
		cancel()
	}
	if err := d.Stop(); err != nil {
		left = append(left, fmt.Sprintf("berthd did not stop cleanly: %v", err))
	}
	// Give exiting monitors a moment before counting them.
	deadline := time.Now().Add(5 * time.Second)
	host := d.hostLeftovers()
	for len(host) > 0 && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
		host = d.hostLeftovers()
	}
	left = append(left, host...)
	d.cleanHost()
	if len(left) == 0 {
		fmt.Println("nothing left behind: no pods, containers, monitors, mounts, veths, cgroups or IP allocations")
		return nil
	}
	for _, l := range left {
		fmt.Printf("LEFT BEHIND: %s\n", l)
	}
	return fmt.Errorf("%d thing(s) left behind", len(left))
}
