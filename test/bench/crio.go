package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/test/launch"
)

// CRI-O's helpers: Debian's conmon (apt conmon) and runc, as a CRI-O node
// on Debian would run them.
const (
	conmonPath = "/usr/bin/conmon"
	// crioCgroupParent is where CRI-O's cgroupfs manager puts pods whose
	// request names no parent (the bench's do not): pods, and their
	// conmons with monitor_cgroup = "pod", below it.
	crioCgroupParent = "/crio"
)

// crioOutside is what crio writes outside its directories whatever its
// config says (containers/image's blob-info cache: CRI-O sets no
// BlobInfoCacheDir, so root's default), deepest first: what a run made,
// it removes (a directory only when empty).
var crioOutside = []string{
	"/var/lib/containers/cache/blob-info-cache-v1.sqlite",
	"/var/lib/containers/cache",
	"/var/lib/containers",
}

// crioMissing says why a CRI-O column cannot run with crio at bin: crio
// itself, its pinns (beside it, as `make crio` builds them, or on PATH),
// conmon and runc; and, for pods sharing a PID namespace (pid "pod"),
// which CRI-O gives an infra container at oom_score_adj -998, root
// without CAP_SYS_RESOURCE.
func crioMissing(bin, pid string) (pinns string, err error) {
	if _, err := os.Stat(bin); err != nil {
		return "", err
	}
	if pid == "pod" && !haveCap(unix.CAP_SYS_RESOURCE) {
		return "", errors.New("-pid pod: CRI-O's infra container asks for oom_score_adj -998, which root here cannot set (no CAP_SYS_RESOURCE) and CRI-O cannot be told to skip")
	}
	pinns = filepath.Join(filepath.Dir(bin), "pinns")
	if _, err := os.Stat(pinns); err != nil {
		if pinns, err = exec.LookPath("pinns"); err != nil {
			return "", fmt.Errorf("no pinns beside %s or on PATH (make crio builds both)", bin)
		}
	}
	for _, p := range []string{conmonPath, launch.Runtimes["runc"]} {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w (apt-get install conmon runc)", err)
		}
	}
	return pinns, nil
}

// newCRIO prepares a crio on private roots: its own config (nothing of
// /etc/crio or /etc/containers is read), the bench's CNI network with an
// IPAM store of its own, the bench's registries.conf and pause image,
// cgroupfs with each pod's conmons in the pod's cgroup.
func newCRIO(bin, pinns, registries, pauseRef string) (*runtime, error) {
	dir, err := os.MkdirTemp("/tmp", "bbo.")
	if err != nil {
		return nil, err
	}
	fp := launch.Footprint{Dir: dir, CgroupParent: crioCgroupParent, CgroupDriver: "cgroupfs",
		Network: network, IPAMDir: filepath.Join(dir, "ipam")}
	r := &runtime{name: "CRI-O", dir: dir, socket: filepath.Join(dir, "crio.sock")}
	r.stop = fp.Clean // until start, for a failed write below
	cfg, err := writeCRIOFiles(dir, r.socket, pinns, registries, pauseRef)
	if err != nil {
		return r, err
	}
	var srv *launch.Process
	var conn *grpc.ClientConn
	var outside []string // crioOutside paths this run made
	r.start = func() error {
		for _, p := range crioOutside {
			if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
				outside = append(outside, p)
			}
		}
		log := filepath.Join(dir, "daemon.log")
		cmd := exec.Command(bin, "--config", cfg, "--config-dir", filepath.Join(dir, "crio.conf.d"),
			"--registries-conf", filepath.Join(dir, "registries.conf"),
			"--registries-conf-dir", filepath.Join(dir, "registries.conf.d"))
		// storage.conf is read besides the [crio] roots (its options, an
		// additional image store): a private one.
		cmd.Env = append(os.Environ(), "CONTAINERS_STORAGE_CONF="+filepath.Join(dir, "storage.conf"))
		var err error
		if srv, err = launch.StartProcess(cmd, log, false); err != nil {
			return err
		}
		if err := srv.WaitServing(r.socket, 60*time.Second); err != nil {
			return fmt.Errorf("crio %v (log %s)", err, log)
		}
		if conn, err = grpc.NewClient("unix://"+r.socket, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
			return err
		}
		r.rt, r.img = runtimeapi.NewRuntimeServiceClient(conn), runtimeapi.NewImageServiceClient(conn)
		return nil
	}
	r.pid = func() int { return srv.PID() }
	// CRI-O keeps its containers over a restart of crio, so its pods are
	// removed through the CRI first (any still there is named), then crio
	// stops and what it left on the host fails the run; the directory,
	// the /crio cgroups and the bridge are removed either way.
	r.stop = func() error {
		var left []string
		if r.rt != nil && srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			left = launch.CRILeftovers(ctx, r.rt)
			cancel()
		}
		if conn != nil {
			conn.Close()
		}
		var serr error
		if srv != nil {
			if serr = srv.Signal(syscall.SIGTERM, 30*time.Second); serr != nil {
				serr = fmt.Errorf("crio did not stop cleanly: %w", serr)
			}
		}
		left = append(left, fp.WaitLeftovers(5*time.Second)...)
		// What crio wrote outside dir that no setting moves: removed,
		// files first, directories when empty; one still there is named.
		for _, p := range outside {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				left = append(left, fmt.Sprintf("%s: %v", p, err))
			}
		}
		// As launch's Teardown prints berthd's: each leftover, and the
		// end of crio's log, which goes with the directory.
		var lerr error
		if len(left) > 0 {
			for _, l := range left {
				fmt.Printf("CRI-O LEFT BEHIND: %s\n", l)
			}
			lerr = fmt.Errorf("crio left %d thing(s) behind", len(left))
		} else {
			fmt.Println("CRI-O: nothing left behind: no pods, containers, conmons, mounts, veths, cgroups, IP allocations or files outside its directory")
		}
		if serr != nil || lerr != nil {
			if b, err := os.ReadFile(filepath.Join(dir, "daemon.log")); err == nil {
				fmt.Fprintf(os.Stderr, "crio's log, the end:\n%s\n", tail(string(b), 20))
			}
		}
		return errors.Join(serr, lerr, fp.Clean())
	}
	// conmon runs with the container's attach and exit directories (under
	// dir) on its command line; one per container, and one per ExecSync
	// (-e) while it runs. The infra (pause) is a conmon's child.
	conmons := map[int]bool{}
	r.role = func(p proc) string {
		switch {
		case p.exe == conmonPath && strings.Contains(p.cmdline, dir+"/"):
			if strings.Contains(p.cmdline, " -e ") {
				return "conmon (exec)"
			}
			conmons[p.pid] = true
			return "conmon"
		case conmons[p.ppid] && p.comm == "pause":
			return "pause"
		}
		return ""
	}
	return r, nil
}

// writeCRIOFiles writes crio.conf and the files it names into dir and
// returns crio.conf's path.
func writeCRIOFiles(dir, socket, pinns, registries, pauseRef string) (string, error) {
	for _, d := range []string{"cni", "crio.conf.d", "registries.conf.d", "run", "root", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return "", err
		}
	}
	conf := network.Conflist(filepath.Join(dir, "ipam"))
	files := map[string]string{
		filepath.Join("cni", "10-"+network.Name+".conflist"): conf,
		"registries.conf": registries,
		"policy.json":     `{"default": [{"type": "insecureAcceptAnything"}]}` + "\n",
		"storage.conf": fmt.Sprintf("[storage]\ndriver = \"overlay\"\ngraphroot = %q\nrunroot = %q\n",
			filepath.Join(dir, "root"), filepath.Join(dir, "run")),
	}
	// Paths CRI-O defaults to /var/lib/crio, /var/run/crio, /etc/sysconfig
	// are all under dir. drop_infra_ctr stays CRI-O's default (true): a
	// pod without a shared PID namespace gets no infra container, as on a
	// CRI-O node. The infra, when there is one, asks runc for
	// oom_score_adj -998, which root without CAP_SYS_RESOURCE (this
	// machine) cannot set below crio's own, and CRI-O has no setting like
	// containerd's restrict_oom_score_adj: with -pid pod, RunPodSandbox
	// fails there (runc: "failed to update /proc/self/oom_score_adj:
	// Permission denied"), so crioMissing skips the column.
	// seccomp and AppArmor: the bench's containers ask for neither, and
	// CRI-O then runs them unconfined (this host has no AppArmor).
	// NRI, metrics, tracing and irqbalance off: nothing outside dir.
	crio := fmt.Sprintf(`[crio]
root = %[1]q
runroot = %[2]q
storage_driver = "overlay"
log_dir = %[3]q
version_file = %[4]q
version_file_persist = %[5]q
clean_shutdown_file = %[6]q

[crio.api]
listen = %[7]q
stream_address = "127.0.0.1"
stream_port = "0"

[crio.runtime]
default_runtime = "runc"
cgroup_manager = "cgroupfs"
selinux = false
hooks_dir = []
cdi_spec_dirs = []
default_mounts_file = ""
container_exits_dir = %[8]q
container_attach_socket_dir = %[9]q
namespaces_dir = %[10]q
pinns_path = %[11]q
irqbalance_config_file = %[12]q
irqbalance_config_restore_file = "disable"
log_to_journald = false
decryption_keys_path = %[23]q

[crio.runtime.runtimes.runc]
runtime_path = %[13]q
runtime_type = "oci"
runtime_root = %[14]q
monitor_path = %[15]q
monitor_cgroup = "pod"

[crio.image]
pause_image = %[16]q
pause_command = "/pause"
signature_policy = %[17]q
signature_policy_dir = %[21]q
namespaced_auth_dir = %[22]q
global_auth_file = ""

[crio.network]
cni_default_network = %[18]q
network_dir = %[19]q
plugin_dirs = [%[20]q]

[crio.metrics]
enable_metrics = false

[crio.tracing]
enable_tracing = false

[crio.nri]
enable_nri = false
`, filepath.Join(dir, "root"), filepath.Join(dir, "run"), filepath.Join(dir, "logs"),
		filepath.Join(dir, "run", "version"), filepath.Join(dir, "root", "version"),
		filepath.Join(dir, "root", "clean.shutdown"), socket,
		filepath.Join(dir, "run", "exits"), filepath.Join(dir, "run", "attach"), filepath.Join(dir, "run", "ns"),
		pinns, filepath.Join(dir, "irqbalance"),
		launch.Runtimes["runc"], filepath.Join(dir, "run", "runc"), conmonPath,
		pauseRef, filepath.Join(dir, "policy.json"),
		network.Name, filepath.Join(dir, "cni"), cniBinDir,
		filepath.Join(dir, "policies"), filepath.Join(dir, "auth"), filepath.Join(dir, "keys"))
	files["crio.conf"] = crio
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return "", err
		}
	}
	return filepath.Join(dir, "crio.conf"), nil
}

// haveCap says whether this process has capability c in its effective
// set (CapEff of /proc/self/status).
func haveCap(c int) bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && mask&(1<<uint(c)) != 0
		}
	}
	return false
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
