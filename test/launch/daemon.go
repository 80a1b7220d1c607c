package launch

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/config"
)

// Network is a lane's own CNI bridge network, named so that lanes and the
// e2e tests running on one machine never share a bridge or a subnet.
// The zero Network is none: the caller writes its own into CNIConfDir.
type Network struct {
	Name, Bridge, Subnet string
	// Bare leaves out masquerade, hairpin, portmap and the loopback
	// plugin (berthd brings lo up itself): the bench's network, the same
	// for every runtime it compares.
	Bare bool
}

// Options says how a lane or a test wants its berthd.
type Options struct {
	// BinDir holds berthd and its helpers (make build).
	BinDir string
	// Log is the file berthd's output goes to; empty: berthd.log in the
	// daemon's directory (removed by Teardown).
	Log string
	// Prefix names the temporary directory (/tmp/<prefix>.XXXX) and the
	// pod cgroup parent; short, since socket paths live under it.
	Prefix string
	// Network is the lane's CNI network; zero for none.
	Network Network
	// Registries is a registries.conf for berthd
	// (testimage.RegistriesConf); empty keeps berthd's default.
	Registries string
	// DefaultRuntime is the handler used when a request names none:
	// "berth" (berth-runner), "runc" or "crun". Every runtime found on
	// the host is configured as a handler of its name either way.
	DefaultRuntime string
	// CgroupDriver is "cgroupfs" (the default) or "systemd".
	CgroupDriver string
	// Debug logs at debug level.
	Debug bool
	// Configure, if set, changes the config last (NRI, timeouts, ...).
	Configure func(c *config.Config, d *Daemon)
	// DropIn is TOML written as a drop-in (berth.toml.d/50-test.toml)
	// after the config, so it may override any key: berthd reads it as a
	// node's drop-ins are read.
	DropIn string
	// Env is added to berthd's environment.
	Env []string
	// Shell, if set, is a bash script run in ShellDir instead of berthd,
	// with BERTH_CONFIG naming the daemon's config (the README's
	// commands, verbatim). It may build first, so the wait until it
	// serves is long; a stop signals its whole process group and waits
	// until the group is gone.
	Shell, ShellDir string
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
	Config       string // berth.toml; drop-ins in berth.toml.d
	Root         string
	RunRoot      string
	CNIConfDir   string
	BinDir       string
	LogPath      string
	CgroupParent string
	CgroupDriver string
	opts         Options

	proc *Process // nil while berthd is not running
	// Conn and its clients are made by the first Start and kept over
	// restarts: they reconnect by themselves.
	Conn    *grpc.ClientConn
	Runtime runtimeapi.RuntimeServiceClient
	Image   runtimeapi.ImageServiceClient
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
	if o.CgroupDriver == "" {
		o.CgroupDriver = "cgroupfs"
	}
	dir, err := os.MkdirTemp("/tmp", o.Prefix+".")
	if err != nil {
		return nil, err
	}
	d := &Daemon{
		Dir:          dir,
		Socket:       filepath.Join(dir, "berth.sock"),
		Config:       filepath.Join(dir, "berth.toml"),
		Root:         filepath.Join(dir, "root"),
		RunRoot:      filepath.Join(dir, "run"),
		CNIConfDir:   filepath.Join(dir, "cni"),
		BinDir:       o.BinDir,
		LogPath:      o.Log,
		CgroupDriver: o.CgroupDriver,
		opts:         o,
	}
	if d.LogPath == "" {
		d.LogPath = d.Path("berthd.log")
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
	// A lane's log may be a fixed path from an earlier run; the daemon's
	// own restarts append to it.
	if err := os.WriteFile(d.LogPath, nil, 0o644); err != nil {
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

// Command is a berthd command on this daemon's config and environment,
// not started: for tests that run a second berthd or expect it to fail.
func (d *Daemon) Command(args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(d.BinDir, "berthd"), append([]string{"--config", d.Config}, args...)...)
	cmd.Env = append(os.Environ(), d.opts.Env...)
	return cmd
}

// Start runs berthd (again, after Stop or Kill: same roots and socket)
// and waits until it answers Version.
func (d *Daemon) Start() error {
	if d.proc != nil {
		return fmt.Errorf("berthd is running (pid %d); stop it first", d.proc.PID())
	}
	cmd, limit := d.Command(), 60*time.Second
	if d.opts.Shell != "" {
		cmd = exec.Command("bash", "-c", d.opts.Shell+"\nwait\n") // wait: the group's leader stays while what it started runs
		cmd.Dir = d.opts.ShellDir
		cmd.Env = append(append(os.Environ(), d.opts.Env...), "BERTH_CONFIG="+d.Config)
		limit = 15 * time.Minute
	}
	p, err := StartProcess(cmd, d.LogPath, d.opts.Shell != "")
	if err != nil {
		return err
	}
	d.proc = p
	if err := p.WaitServing(d.Socket, limit); err != nil {
		return fmt.Errorf("berthd %v (log: %s)", err, d.LogPath)
	}
	if d.Conn == nil {
		// Reconnect within a second of a restart; grpc's default backoff
		// grows to two minutes. MinConnectTimeout is grpc's default: left
		// zero, an attempt would be cut off at the backoff delay (100ms),
		// too short on a loaded machine.
		conn, err := grpc.NewClient("unix://"+d.Socket,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)),
			grpc.WithConnectParams(grpc.ConnectParams{
				Backoff: backoff.Config{
					BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
				MinConnectTimeout: 20 * time.Second,
			}))
		if err != nil {
			return err
		}
		d.Conn = conn
		d.Runtime = runtimeapi.NewRuntimeServiceClient(conn)
		d.Image = runtimeapi.NewImageServiceClient(conn)
	}
	return nil
}

// PID is the running berthd's pid (the Shell's), or 0.
func (d *Daemon) PID() int {
	if d.proc == nil {
		return 0
	}
	return d.proc.PID()
}

// Log is what berthd printed so far.
func (d *Daemon) Log() string {
	b, _ := os.ReadFile(d.LogPath)
	return string(b)
}

// Stop sends SIGTERM and waits for berthd to exit, SIGKILL after 30s;
// it returns the exit error.
func (d *Daemon) Stop() error { return d.signal(syscall.SIGTERM) }

// Kill sends SIGKILL, as a crash would, and waits for the exit.
func (d *Daemon) Kill() error { return d.signal(syscall.SIGKILL) }

func (d *Daemon) signal(sig syscall.Signal) error {
	if d.proc == nil {
		return nil
	}
	defer func() { d.proc = nil }()
	if err := d.proc.Signal(sig, 30*time.Second); err != nil {
		return fmt.Errorf("berthd: %w", err)
	}
	return nil
}

// Teardown is Shutdown then Clean for a lane: each leftover printed as
// "LEFT BEHIND: ...", and an error if there was any.
func (d *Daemon) Teardown() error {
	left := d.Shutdown()
	if err := d.Clean(); err != nil {
		left = append(left, err.Error())
	}
	if len(left) == 0 {
		fmt.Println("nothing left behind: no pods, containers, monitors, mounts, veths, cgroups or IP allocations")
		return nil
	}
	for _, l := range left {
		fmt.Printf("LEFT BEHIND: %s\n", l)
	}
	return fmt.Errorf("%d thing(s) left behind", len(left))
}
