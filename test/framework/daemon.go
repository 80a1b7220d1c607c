package framework

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Options change how StartDaemon runs berthd.
type Options struct {
	// ConfigTOML is written as a drop-in after the test's base config, so
	// it may override any key.
	ConfigTOML string
	// Env is added to berthd's environment.
	Env []string
	// Args are added to berthd's command line.
	Args []string
	// Shell, if set, is a bash script run in the repository's root
	// instead of berthd, with BERTH_CONFIG naming the daemon's config:
	// the README's commands, verbatim. It may build first (make run), so
	// the wait for the socket is long; at the end its whole process
	// group gets the stop signal and the test waits until it is gone.
	Shell string
}

// Daemon is a running berthd with its clients.
type Daemon struct {
	Dir          string // everything of this daemon lives under Dir
	Root         string
	RunRoot      string
	Socket       string
	ConfigPath   string
	CNIConfDir   string
	BinDir       string
	CgroupParent string

	Runtime runtimeapi.RuntimeServiceClient
	Image   runtimeapi.ImageServiceClient
	Conn    *grpc.ClientConn

	opts    Options
	cmd     *exec.Cmd
	waitErr chan error
	logPath string
}

// StartDaemon starts berthd on private roots and registers its teardown.
// The directory is short (/tmp/btXXXX) because unix socket paths under the
// run root must stay within 108 bytes.
func StartDaemon(t testing.TB, opts Options) *Daemon {
	t.Helper()
	RequireRoot(t)
	bin := BinDir(t)
	dir, err := os.MkdirTemp("/tmp", "bt")
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{
		Dir:          dir,
		Root:         filepath.Join(dir, "root"),
		RunRoot:      filepath.Join(dir, "run"),
		Socket:       filepath.Join(dir, "berth.sock"),
		ConfigPath:   filepath.Join(dir, "berth.toml"),
		CNIConfDir:   filepath.Join(dir, "cni"),
		BinDir:       bin,
		CgroupParent: fmt.Sprintf("/berth-test-%08x", rand.Uint32()),
		opts:         opts,
		logPath:      filepath.Join(dir, "berthd.log"),
	}
	t.Cleanup(func() { d.teardown(t) })
	if err := d.writeConfig(); err != nil {
		t.Fatal(err)
	}
	if err := d.start(); err != nil {
		t.Fatalf("start berthd: %v\n%s", err, d.Log())
	}
	conn, err := grpc.NewClient("unix://"+d.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)))
	if err != nil {
		t.Fatal(err)
	}
	d.Conn = conn
	d.Runtime = runtimeapi.NewRuntimeServiceClient(conn)
	d.Image = runtimeapi.NewImageServiceClient(conn)
	return d
}

func (d *Daemon) writeConfig() error {
	for _, p := range []string{d.CNIConfDir, d.ConfigPath + ".d"} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
	}
	var handlers strings.Builder
	if _, err := os.Stat(filepath.Join(d.BinDir, "berth-runner")); err == nil {
		fmt.Fprintf(&handlers, "[runtime.handlers.berth]\npath = %q\n", filepath.Join(d.BinDir, "berth-runner"))
	}
	if _, err := os.Stat("/usr/sbin/runc"); err == nil {
		fmt.Fprintf(&handlers, "[runtime.handlers.runc]\npath = \"/usr/sbin/runc\"\n")
	}
	base := fmt.Sprintf(`listen = "unix://%s"
root = %q
runroot = %q

[log]
level = "debug"

[runtime]
monitor_path = %q
pause_path = %q
cgroup_parent = %q

%s
[network]
conf_dir = %q
# No test pod may land on the built-in bridge berth0, which belongs to
# whoever runs berthd on this machine; tests of the fallback set their own.
fallback_config = "none"
`, d.Socket, d.Root, d.RunRoot,
		filepath.Join(d.BinDir, "berth-monitor"), filepath.Join(d.BinDir, "berth-pause"),
		d.CgroupParent, handlers.String(), d.CNIConfDir)
	if err := os.WriteFile(d.ConfigPath, []byte(base), 0o644); err != nil {
		return err
	}
	if d.opts.ConfigTOML != "" {
		return os.WriteFile(filepath.Join(d.ConfigPath+".d", "50-test.toml"), []byte(d.opts.ConfigTOML), 0o644)
	}
	return nil
}

// Command returns a berthd command on this daemon's config, not started,
// for tests that run a second berthd or expect it to fail.
func (d *Daemon) Command(args ...string) *exec.Cmd {
	all := append([]string{"--config", d.ConfigPath}, d.opts.Args...)
	cmd := exec.Command(filepath.Join(d.BinDir, "berthd"), append(all, args...)...)
	cmd.Env = append(os.Environ(), d.opts.Env...)
	return cmd
}

func (d *Daemon) start() error {
	logf, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd, limit := d.Command(), 60*time.Second
	if d.opts.Shell != "" {
		cmd, limit = d.shellCommand(), 15*time.Minute
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	// berthd must not die with the test's process group signals; the
	// test stops it explicitly.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	d.cmd = cmd
	d.waitErr = make(chan error, 1)
	go func() { d.waitErr <- cmd.Wait() }()
	return d.waitReady(limit)
}

// shellCommand runs Options.Shell; the trailing wait keeps bash, the
// process group's leader, there while what it started in the background
// runs.
func (d *Daemon) shellCommand() *exec.Cmd {
	cmd := exec.Command("bash", "-c", d.opts.Shell+"\nwait\n")
	cmd.Dir = RepoRoot()
	cmd.Env = append(append(os.Environ(), d.opts.Env...), "BERTH_CONFIG="+d.ConfigPath)
	return cmd
}

// waitReady polls until the socket answers Version or berthd exits.
func (d *Daemon) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case err := <-d.waitErr:
			d.waitErr <- err
			return fmt.Errorf("berthd exited before serving: %v", err)
		default:
		}
		if _, err := os.Stat(d.Socket); err == nil {
			conn, err := grpc.NewClient("unix://"+d.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, verr := runtimeapi.NewRuntimeServiceClient(conn).Version(ctx, &runtimeapi.VersionRequest{})
				cancel()
				conn.Close()
				if verr == nil {
					return nil
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("berthd not serving on %s after %s", d.Socket, limit)
}

// Ctx is a context for one test's RPCs, ended with the test.
func (d *Daemon) Ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// Log returns what berthd printed so far.
func (d *Daemon) Log() string {
	b, _ := os.ReadFile(d.logPath)
	return string(b)
}

// PID is the running berthd's pid, or 0.
func (d *Daemon) PID() int {
	if d.cmd == nil || d.cmd.Process == nil {
		return 0
	}
	return d.cmd.Process.Pid
}

// Stop sends SIGTERM and waits for berthd to exit; it returns the exit error.
func (d *Daemon) Stop(t testing.TB) error {
	t.Helper()
	return d.signal(syscall.SIGTERM, 30*time.Second)
}

// Kill sends SIGKILL, as a crash would.
func (d *Daemon) Kill(t testing.TB) {
	t.Helper()
	d.signal(syscall.SIGKILL, 30*time.Second)
}

// Restart starts berthd again on the same roots and socket (after Stop or
// Kill) and waits until it serves. The clients reconnect by themselves.
func (d *Daemon) Restart(t testing.TB) {
	t.Helper()
	if d.cmd != nil {
		t.Fatal("Restart: berthd is still running; Stop or Kill it first")
	}
	if err := d.start(); err != nil {
		t.Fatalf("restart berthd: %v\n%s", err, d.Log())
	}
}

func (d *Daemon) signal(sig syscall.Signal, wait time.Duration) error {
	if d.cmd == nil {
		return nil
	}
	if d.opts.Shell != "" {
		return d.signalGroup(sig, wait)
	}
	d.cmd.Process.Signal(sig)
	var err error
	select {
	case err = <-d.waitErr:
	case <-time.After(wait):
		d.cmd.Process.Kill()
		err = <-d.waitErr
		err = fmt.Errorf("berthd did not exit %s after %s (killed): %v", wait, sig, err)
	}
	d.cmd = nil
	return err
}

// signalGroup signals the Shell's process group (its leader is our
// child, so the group is ours) and waits until no process is left in it.
func (d *Daemon) signalGroup(sig syscall.Signal, wait time.Duration) error {
	pgid := d.cmd.Process.Pid
	syscall.Kill(-pgid, sig)
	err := <-d.waitErr
	d.cmd = nil
	deadline := time.Now().Add(wait)
	for syscall.Kill(-pgid, 0) == nil {
		if time.Now().After(deadline) {
			syscall.Kill(-pgid, syscall.SIGKILL)
			return fmt.Errorf("processes of %q still there %s after %s (killed)", d.opts.Shell, wait, sig)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if sig == syscall.SIGTERM {
		return nil // bash itself dies of the signal; what it ran was asked to stop
	}
	return err
}
