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

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The bench network: a bridge and subnet of its own, so it collides
// neither with contrib's berth0 nor with the tests running next to it.
const (
	cniBridge = "berthbn0"
	cniSubnet = "10.91.0.0/16"
	cniBinDir = "/usr/lib/cni"
)

// runtime is one CRI server under measurement, on private roots.
type runtime struct {
	name   string
	dir    string // everything it writes: roots, socket, config, log
	socket string
	argv   []string
	// role names what a process is to this runtime ("monitor", "pause")
	// or "" when it is not its.
	role func(p proc) string

	// metrics is the daemon's Prometheus address (host:port), where
	// berthd's per-step times are read; empty when it has none.
	metrics string

	// cleanup removes what the daemon leaves on the node by design
	// (berthd keeps its cgroup parent); nil when nothing.
	cleanup func()

	cmd  *exec.Cmd
	done chan error
	conn *grpc.ClientConn
	rt   runtimeapi.RuntimeServiceClient
	img  runtimeapi.ImageServiceClient
}

// cniConf is the same bridge network for both runtimes; only the IPAM
// store differs, so one runtime's leases never shadow the other's. It has
// no loopback plugin: both bring lo up without it (berthd in-process,
// containerd by running the loopback plugin on a network of its own).
func cniConf(dir string) error {
	conf := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "berthbench",
  "plugins": [
    { "type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false,
      "ipam": { "type": "host-local", "dataDir": %q, "ranges": [[{ "subnet": %q }]], "routes": [{ "dst": "0.0.0.0/0" }] } }
  ]
}
`, cniBridge, filepath.Join(dir, "ipam"), cniSubnet)
	if err := os.MkdirAll(filepath.Join(dir, "cni"), 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "cni", "10-berthbench.conflist"), []byte(conf), 0o644)
}

func newBerth(bindir, regConf string) (*runtime, error) {
	dir, err := os.MkdirTemp("/tmp", "bbb.")
	if err != nil {
		return nil, err
	}
	if err := cniConf(dir); err != nil {
		return nil, err
	}
	cgroupParent := fmt.Sprintf("/berthbench-%08x", rand.Uint32())
	metrics, err := freeAddr()
	if err != nil {
		return nil, err
	}
	r := &runtime{name: "Berth", dir: dir, socket: filepath.Join(dir, "berth.sock"), metrics: metrics,
		cleanup: func() { removeCgroups(cgroupParent) }}
	toml := fmt.Sprintf(`listen = "unix://%s"
root = %q
runroot = %q

[log]
level = "info"

[metrics]
address = %q

[runtime]
default = "berth"
monitor_path = %q
pause_path = %q
cgroup_parent = %q

[runtime.handlers.berth]
path = %q

[image]
registries_conf = %q

[network]
conf_dir = %q
fallback_config = "none"
`, r.socket, filepath.Join(dir, "root"), filepath.Join(dir, "run"), metrics,
		filepath.Join(bindir, "berth-monitor"), filepath.Join(bindir, "berth-pause"),
		cgroupParent, filepath.Join(bindir, "berth-runner"),
		regConf, filepath.Join(dir, "cni"))
	cfg := filepath.Join(dir, "berth.toml")
	if err := os.WriteFile(cfg, []byte(toml), 0o644); err != nil {
		return nil, err
	}
	r.argv = []string{filepath.Join(bindir, "berthd"), "--config", cfg}
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
	if err := cniConf(dir); err != nil {
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
	r.argv = []string{bin, "--config", cfg}
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

// start runs the daemon and waits until it answers Version.
func (r *runtime) start() error {
	logf, err := os.Create(filepath.Join(r.dir, "daemon.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	r.cmd = exec.Command(r.argv[0], r.argv[1:]...)
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		return err
	}
	r.done = make(chan error, 1)
	go func() { r.done <- r.cmd.Wait() }()
	r.conn, err = grpc.NewClient("unix://"+r.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	r.rt = runtimeapi.NewRuntimeServiceClient(r.conn)
	r.img = runtimeapi.NewImageServiceClient(r.conn)
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		select {
		case err := <-r.done:
			r.done <- err
			return fmt.Errorf("%s exited before serving: %v (log %s)", r.name, err, filepath.Join(r.dir, "daemon.log"))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := r.rt.Version(ctx, &runtimeapi.VersionRequest{})
		cancel()
		if err == nil {
			return nil
		}
	}
	return fmt.Errorf("%s not serving on %s after 60s", r.name, r.socket)
}

func (r *runtime) pid() int { return r.cmd.Process.Pid }

func (r *runtime) pull(ref string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := r.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	if err != nil {
		return fmt.Errorf("%s: pull %s: %w", r.name, ref, err)
	}
	return nil
}

// stop ends the daemon (SIGTERM, SIGKILL after 30s), unmounts whatever it
// left under its directory and removes the directory.
func (r *runtime) stop() {
	if r.conn != nil {
		r.conn.Close()
	}
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			r.cmd.Process.Kill()
			<-r.done
		}
	}
	unmountUnder(r.dir)
	os.RemoveAll(r.dir)
	if r.cleanup != nil {
		r.cleanup()
	}
}

// removeCgroups removes the cgroup parent from every hierarchy, children
// first; rmdir refuses a cgroup that still has processes, so nothing
// running is touched.
func removeCgroups(parent string) {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, root := range roots {
		var dirs []string
		filepath.WalkDir(filepath.Join(root, parent), func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			os.Remove(dirs[i])
		}
	}
}

// removeBridge deletes the bench's bridge, which the CNI bridge plugin
// leaves behind on purpose (other pods may share it).
func removeBridge() {
	if out, err := exec.Command("ip", "link", "del", cniBridge).CombinedOutput(); err != nil && !strings.Contains(string(out), "Cannot find device") {
		fmt.Fprintf(os.Stderr, "remove bridge %s: %v: %s\n", cniBridge, err, out)
	}
}

// unmountUnder detaches every mount below dir, deepest first, so that
// removing dir never reaches into a container's root.
func unmountUnder(dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var mounts []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			mounts = append(mounts, f[4])
		}
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		unix.Unmount(mounts[i], unix.MNT_DETACH)
	}
}
