package framework

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/berth-cri/berth/config"
	"github.com/berth-cri/berth/test/launch"
)

// Options change how StartDaemon runs berthd.
type Options struct {
	// CgroupDriver is runtime.cgroup_driver: "cgroupfs" or "systemd";
	// empty takes $BERTH_TEST_CGROUP_DRIVER, else cgroupfs. The test's
	// cgroup_parent is in the driver's form: /bt-<n> or the slice
	// bt<n>.slice.
	CgroupDriver string
	// ConfigTOML is written as a drop-in after the test's base config, so
	// it may override any key.
	ConfigTOML string
	// Env is added to berthd's environment.
	Env []string
	// BinDir, if set, is where berthd and its helpers are instead of
	// BinDir(t) (make build's): the upgrade test runs an older build
	// from it first, then replaces the files in place.
	BinDir string
	// Shell, if set, is a bash script run in the repository's root
	// instead of berthd, with BERTH_CONFIG naming the daemon's config:
	// the README's commands, verbatim. It may build first (make run), so
	// the wait for the socket is long; at the end its whole process
	// group gets the stop signal and the test waits until it is gone.
	Shell string
}

// Daemon is a running berthd with its clients (launch.Daemon's fields:
// Dir, Root, RunRoot, Socket, Config, CNIConfDir, BinDir, CgroupParent,
// CgroupDriver, Runtime, Image), stopped and checked when the test ends.
type Daemon struct {
	*launch.Daemon
}

// StartDaemon starts berthd on private roots through test/launch and
// registers its teardown. The directory is short (/tmp/bt.XXXX) because
// unix socket paths under the run root must stay within 108 bytes.
func StartDaemon(t testing.TB, opts Options) *Daemon {
	t.Helper()
	RequireRoot(t)
	bin := opts.BinDir
	if bin == "" {
		bin = BinDir(t)
	}
	ld, err := launch.New(launch.Options{
		BinDir:       bin,
		Prefix:       "bt",
		CgroupDriver: CgroupDriver(opts),
		Debug:        true,
		Configure:    discoverHandlers,
		DropIn:       opts.ConfigTOML,
		Env:          opts.Env,
		Shell:        opts.Shell,
		ShellDir:     RepoRoot(),
	})
	if ld == nil {
		t.Fatal(err)
	}
	d := &Daemon{ld}
	t.Cleanup(func() { d.teardown(t) })
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Daemon.Start(); err != nil {
		t.Fatalf("start berthd: %v\n%s", err, d.Log())
	}
	return d
}

// discoverHandlers leaves crun to berthd's discovery from PATH, as a
// node's default config does, so the tests see discovery at work; berth
// and runc stay named.
func discoverHandlers(c *config.Config, _ *launch.Daemon) {
	delete(c.Runtime.Handlers, "crun")
	c.Runtime.DiscoverHandlers = true
}

// CgroupDriver is the driver a daemon started with opts gets.
func CgroupDriver(opts Options) string {
	if opts.CgroupDriver != "" {
		return opts.CgroupDriver
	}
	if d := os.Getenv("BERTH_TEST_CGROUP_DRIVER"); d != "" {
		return d
	}
	return "cgroupfs"
}

// Ctx is a context for one test's RPCs, ended with the test.
func (d *Daemon) Ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// Stop sends SIGTERM and waits for berthd to exit; it returns the exit error.
func (d *Daemon) Stop(t testing.TB) error {
	t.Helper()
	return d.Daemon.Stop()
}

// Kill sends SIGKILL, as a crash would.
func (d *Daemon) Kill(t testing.TB) {
	t.Helper()
	d.Daemon.Kill()
}

// Restart starts berthd again on the same roots and socket (after Stop or
// Kill) and waits until it serves. The clients reconnect by themselves.
func (d *Daemon) Restart(t testing.TB) {
	t.Helper()
	if d.PID() != 0 {
		t.Fatal("Restart: berthd is still running; Stop or Kill it first")
	}
	if err := d.Daemon.Start(); err != nil {
		t.Fatalf("restart berthd: %v\n%s", err, d.Log())
	}
}

// teardown is test/launch's: the pods and containers berthd still has,
// its stop, a data race in its log, then processes, mounts, cgroups and
// systemd units it left; each fails the test, and a failed test gets
// berthd's whole log. Then the host is cleaned, so one failing test does
// not poison the next.
func (d *Daemon) teardown(t testing.TB) {
	for _, l := range d.Shutdown() {
		t.Errorf("left behind: %s", l)
	}
	if t.Failed() {
		t.Logf("berthd log (%s):\n%s", d.LogPath, d.Log())
	}
	if err := d.Clean(); err != nil {
		t.Error(err)
	}
}
