package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/test/framework"
	"github.com/berth-cri/berth/test/testimage"
)

// First run: a node with no CNI config runs pods on berthd's fallback
// network, and `berthctl run` shows a container in one command.
//
// These tests never use the built-in fallback's bridge berth0 and subnet
// 10.87.0.0/16 for a pod, since other berthds on the machine may: they
// point network.fallback_config at the shipped config with the test's
// own bridge, subnet and IPAM directory, and the built-in one is only
// checked through Status.

// firstRunEnv is a berthd on an empty CNI config directory, with a
// registry holding a busybox image.
type firstRunEnv struct {
	d     *framework.Daemon
	reg   *testimage.Registry
	image string
	// fallback is the network of the fallback config (nil: built-in).
	fallback *testNet
	// fallbackFile is network.fallback_config.
	fallbackFile string
}

type firstRunOptions struct {
	// fallback is network.fallback_config: "" writes the shipped config
	// with a network of the test's own.
	fallback string
	// registries, if set, gives the registries.conf for the registry's host.
	registries func(host string) testimage.ConfOptions
}

func startFirstRunEnv(t *testing.T, o firstRunOptions) *firstRunEnv {
	t.Helper()
	framework.RequireRoot(t)
	e := &firstRunEnv{reg: testimage.StartRegistry(t, testimage.RegistryOptions{})}
	co := testimage.ConfOptions{Insecure: []string{e.reg.Host}}
	if o.registries != nil {
		co = o.registries(e.reg.Host)
	}
	e.fallbackFile = o.fallback
	if e.fallbackFile == "" {
		e.fallback = newTestNet(t)
		e.fallbackFile = e.fallback.writeShipped(t, t.TempDir())
	}
	e.d = framework.StartDaemon(t, framework.Options{ConfigTOML: fmt.Sprintf(`
[image]
registries_conf = %q

[network]
fallback_config = %q
`, testimage.WriteRegistriesConf(t, co), e.fallbackFile)})
	img, err := testimage.Busybox(testimage.Spec{Name: "firstrun", Cmd: []string{"/bin/sh"}})
	if err != nil {
		t.Fatal(err)
	}
	_, e.image = e.reg.Push(t, "busybox:1.0", img)
	return e
}

// writeShipped writes contrib/cni/10-berth-bridge.conflist with this
// network's name, bridge, subnet and IPAM directory, and nothing else
// changed, into dir; it returns the file's path.
func (n *testNet) writeShipped(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(framework.RepoRoot(), "contrib", "cni", "10-berth-bridge.conflist"))
	if err != nil {
		t.Fatal(err)
	}
	var conf map[string]any
	if err := json.Unmarshal(b, &conf); err != nil {
		t.Fatal(err)
	}
	conf["name"] = n.Name
	bridge := conf["plugins"].([]any)[0].(map[string]any)
	if bridge["type"] != "bridge" || bridge["bridge"] != "berth0" {
		t.Fatalf("contrib conflist changed shape: first plugin %v", bridge)
	}
	bridge["bridge"] = n.Bridge
	ipam := bridge["ipam"].(map[string]any)
	ipam["ranges"] = [][]map[string]string{{{"subnet": n.Subnet.String()}}}
	ipam["dataDir"] = n.IPAMDir
	out, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "fallback-"+n.Bridge+".conflist")
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// berthctlResult is what one berthctl run printed and its exit code.
type berthctlResult struct {
	stdout, stderr string
	code           int
}

func (e *firstRunEnv) berthctl(t *testing.T, args ...string) berthctlResult {
	t.Helper()
	return e.berthctlWithStdin(t, "", args...)
}

// berthctlWithStdin runs berthctl with stdin as its input (none when empty).
func (e *firstRunEnv) berthctlWithStdin(t *testing.T, stdin string, args ...string) berthctlResult {
	t.Helper()
	cmd := exec.Command(filepath.Join(e.d.BinDir, "berthctl"), append([]string{"-endpoint", e.d.Socket}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("berthctl %v: %v", args, err)
	}
	return berthctlResult{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
}

// networkStatus is Status's NetworkReady condition and verbose network info.
type networkStatus struct {
	cond *runtimeapi.RuntimeCondition
	info struct {
		ConfDir  string `json:"confDir"`
		Name     string `json:"name"`
		File     string `json:"file"`
		Fallback bool   `json:"fallback"`
		Error    string `json:"error"`
	}
}

func getNetworkStatus(t *testing.T, d *framework.Daemon) *networkStatus {
	t.Helper()
	resp, err := d.Runtime.Status(d.Ctx(t), &runtimeapi.StatusRequest{Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	ns := &networkStatus{}
	for _, c := range resp.Status.Conditions {
		if c.Type == runtimeapi.NetworkReady {
			ns.cond = c
		}
	}
	if ns.cond == nil {
		t.Fatal("Status has no NetworkReady condition")
	}
	if err := json.Unmarshal([]byte(resp.Info["network"]), &ns.info); err != nil {
		t.Fatalf("verbose info network %q: %v", resp.Info["network"], err)
	}
	return ns
}

// podLogDirs lists berthctl run's pod log directories on the node.
func podLogDirs(t *testing.T) map[string]bool {
	t.Helper()
	m, _ := filepath.Glob("/var/log/pods/default_run-*")
	out := map[string]bool{}
	for _, p := range m {
		out[p] = true
	}
	return out
}

// requireRunLeftNothing checks what requireNothingLeft checks, and that
// no container is listed, nothing was written into the CNI config dir,
// and no pod log directory appeared since before.
func (e *firstRunEnv) requireRunLeftNothing(t *testing.T, logDirsBefore map[string]bool) {
	t.Helper()
	requireNothingLeft(t, e.d, e.fallback)
	list, err := e.d.Runtime.ListContainers(e.d.Ctx(t), &runtimeapi.ListContainersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range list.Containers {
		t.Errorf("container still listed: %s %s", c.Id, c.Metadata.Name)
	}
	if entries, _ := os.ReadDir(e.d.CNIConfDir); len(entries) > 0 {
		t.Errorf("berthd wrote into the CNI config dir: %v", entries)
	}
	for p := range podLogDirs(t) {
		if !logDirsBefore[p] {
			t.Errorf("pod log directory left behind: %s", p)
		}
	}
}

// The issue's test: an empty CNI config dir, `berthctl run --rm IMAGE sh
// -c 'echo hello; exit 3'` prints hello, exits 3 and leaves nothing.
func TestFirstRunFallbackNetwork(t *testing.T) {
	e := startFirstRunEnv(t, firstRunOptions{})
	if entries, _ := os.ReadDir(e.d.CNIConfDir); len(entries) != 0 {
		t.Fatalf("CNI config dir not empty: %v", entries)
	}
	st := getNetworkStatus(t, e.d)
	if !st.cond.Status || !strings.Contains(st.cond.Message, "fallback") || !strings.Contains(st.cond.Message, e.fallbackFile) {
		t.Errorf("NetworkReady = %v %q, want true naming the fallback %s", st.cond.Status, st.cond.Message, e.fallbackFile)
	}
	if !st.info.Fallback || st.info.File != e.fallbackFile || st.info.Name != e.fallback.Name || st.info.ConfDir != e.d.CNIConfDir {
		t.Errorf("verbose network info = %+v", st.info)
	}
	if log := e.d.Log(); !strings.Contains(log, "no CNI network config in "+e.d.CNIConfDir+": new pods use the fallback network ("+e.fallbackFile) {
		t.Errorf("berthd's log does not say it uses the fallback:\n%s", log)
	}

	before := podLogDirs(t)
	start := time.Now()
	r := e.berthctl(t, "run", "--rm", e.image, "sh", "-c", "echo hello; exit 3")
	t.Logf("berthctl run --rm, with the pull: %s", time.Since(start).Round(time.Millisecond))
	if r.stdout != "hello\n" || r.code != 3 {
		t.Errorf("berthctl run = stdout %q, exit %d, want \"hello\\n\" and 3; stderr:\n%s", r.stdout, r.code, r.stderr)
	}
	e.requireRunLeftNothing(t, before)

	// Again, with the image there.
	start = time.Now()
	if r := e.berthctl(t, "run", "--rm", e.image, "true"); r.code != 0 {
		t.Errorf("berthctl run --rm IMAGE true = exit %d; stderr:\n%s", r.code, r.stderr)
	}
	t.Logf("berthctl run --rm, image present: %s", time.Since(start).Round(time.Millisecond))
	e.requireRunLeftNothing(t, before)
}

// A node's own CNI config wins over the fallback, and the fallback comes
// back (for new pods) when the node's config goes.
func TestFirstRunNodeConfigWins(t *testing.T) {
	e := startFirstRunEnv(t, firstRunOptions{})
	node := newTestNet(t)
	nodeFile := filepath.Join(e.d.CNIConfDir, "10-node.conflist")
	node.write(t, e.d.CNIConfDir, "10-node.conflist", node.plugins())

	st := getNetworkStatus(t, e.d)
	if !st.cond.Status || st.cond.Message != "" || st.info.Fallback || st.info.File != nodeFile || st.info.Name != node.Name {
		t.Errorf("with a node config: NetworkReady %v %q, info %+v; want the node's %s", st.cond.Status, st.cond.Message, st.info, nodeFile)
	}
	id := runPod(t, e.d, podConfig("node-wins"))
	pod := podStatus(t, e.d, id)
	if ip := pod.Status.GetNetwork().GetIp(); !node.Subnet.Contains(net.ParseIP(ip)) {
		t.Errorf("pod IP %s is not on the node's network %s (fallback %s)", ip, node.Subnet, e.fallback.Subnet)
	}
	if p := node.ports(t); len(p) != 1 {
		t.Errorf("node bridge %s ports = %v, want the pod's veth", node.Bridge, p)
	}
	if p := e.fallback.ports(t); len(p) != 0 || len(e.fallback.allocations(t)) != 0 {
		t.Errorf("the fallback network was used: ports %v, IPs %v", p, e.fallback.allocations(t))
	}
	if log := e.d.Log(); !strings.Contains(log, "new pods use the CNI network config "+nodeFile) {
		t.Errorf("berthd's log does not name the node's config:\n%s", log)
	}

	// The pod keeps its network through removal even when the node's
	// config is gone; new pods get the fallback again.
	if err := os.Remove(nodeFile); err != nil {
		t.Fatal(err)
	}
	if st := getNetworkStatus(t, e.d); !st.info.Fallback || st.info.File != e.fallbackFile {
		t.Errorf("after the node's config went: info %+v, want the fallback", st.info)
	}
	ctx := e.d.Ctx(t)
	if _, err := e.d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Fatal(err)
	}
	requireNothingLeft(t, e.d, node)
}

// The built-in fallback is the shipped config (not used for a pod here:
// berth0 belongs to whoever runs berthd on this machine), and "none"
// leaves the network not ready, as before.
func TestFirstRunBuiltinAndNone(t *testing.T) {
	requireCNIPlugins(t)
	e := startFirstRunEnv(t, firstRunOptions{fallback: "builtin"})
	st := getNetworkStatus(t, e.d)
	want := "builtin contrib/cni/10-berth-bridge.conflist"
	if !st.cond.Status || !st.info.Fallback || st.info.File != want || st.info.Name != "berth" {
		t.Errorf("builtin: NetworkReady %v %q, info %+v; want ready on %q, network berth", st.cond.Status, st.cond.Message, st.info, want)
	}
	r := e.berthctl(t, "info")
	if r.code != 0 || !strings.Contains(r.stdout, want) {
		t.Errorf("berthctl info does not show the fallback (exit %d):\n%s%s", r.code, r.stdout, r.stderr)
	}

	none := startFirstRunEnv(t, firstRunOptions{fallback: "none"})
	st = getNetworkStatus(t, none.d)
	if st.cond.Status || !strings.Contains(st.cond.Message, "no CNI network config in "+none.d.CNIConfDir) || st.info.Fallback {
		t.Errorf("none: NetworkReady %v %q, info %+v; want not ready", st.cond.Status, st.cond.Message, st.info)
	}
}

// Ctrl-C stops the container, a second one kills it at once, and --rm
// still removes everything; the exit code is the container's.
func TestFirstRunCtrlC(t *testing.T) {
	e := startFirstRunEnv(t, firstRunOptions{})
	for _, tc := range []struct {
		name        string
		stopTimeout string
		ctrlCs      int
		flags       []string
	}{
		// sleep as PID 1 ignores SIGTERM: SIGKILL after the grace period.
		{"grace period", "1", 1, nil},
		// A grace period the test would never see the end of.
		{"second Ctrl-C", "3600", 2, nil},
		// With -i, attach holds the container's stdin open meanwhile.
		{"stdin attached", "3600", 2, []string{"-i"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := podLogDirs(t)
			args := append([]string{"-endpoint", e.d.Socket, "run", "--rm", "--stop-timeout", tc.stopTimeout}, tc.flags...)
			cmd := exec.Command(filepath.Join(e.d.BinDir, "berthctl"),
				append(args, e.image, "sh", "-c", "echo ready; exec sleep 3600")...)
			// A stdin that stays open, as a user's terminal does.
			stdin, stdinW, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer stdinW.Close()
			cmd.Stdin = stdin
			// An os.Pipe rather than StdoutPipe, so Wait may run while the
			// test reads.
			stdout, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer stdout.Close()
			var stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = w, &stderr
			err = cmd.Start()
			w.Close()
			stdin.Close()
			if err != nil {
				t.Fatal(err)
			}
			exited := make(chan struct{})
			go func() { cmd.Wait(); close(exited) }()
			t.Cleanup(func() {
				select {
				case <-exited:
				default:
					cmd.Process.Kill()
					<-exited
				}
			})
			line := make([]byte, len("ready\n"))
			if _, err := io.ReadFull(stdout, line); err != nil || string(line) != "ready\n" {
				t.Fatalf("first output %q, %v; stderr:\n%s", line, err, stderr.String())
			}
			for i := 0; i < tc.ctrlCs; i++ {
				if i > 0 {
					time.Sleep(300 * time.Millisecond) // the first stop is under way
				}
				if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case <-exited:
			case <-time.After(2 * time.Minute):
				t.Fatalf("berthctl run still running 2 minutes after %d Ctrl-C; stderr:\n%s", tc.ctrlCs, stderr.String())
			}
			if code := cmd.ProcessState.ExitCode(); code != 137 {
				t.Errorf("exit code after Ctrl-C = %d, want 137 (SIGKILL); stderr:\n%s", code, stderr.String())
			}
			e.requireRunLeftNothing(t, before)
		})
	}
}

// run's flags reach the container, which gets kubelet's defaults: not
// privileged, the default capabilities, RuntimeDefault seccomp.
func TestFirstRunFlagsAndDefaults(t *testing.T) {
	e := startFirstRunEnv(t, firstRunOptions{})
	before := podLogDirs(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("from-host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `echo "$GREETING"; cat /data/f; grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status; ` +
		`hostname; touch /data/new 2>/dev/null && echo writable; exit 0`
	r := e.berthctl(t, "run", "--rm", "--name", "flags", "-e", "GREETING=hi there", "-v", dir+":/data:ro",
		"-p", "127.0.0.1:0:80", e.image, "sh", "-c", script)
	if r.code != 125 || !strings.Contains(r.stderr, "ports are numbers from 1 to 65535") {
		t.Errorf("-p with port 0: exit %d, stderr %q; want 125 and the reason", r.code, r.stderr)
	}
	r = e.berthctl(t, "run", "--rm", "--name", "flags", "-e", "GREETING=hi there", "-v", dir+":/data:ro",
		e.image, "sh", "-c", script)
	// containerd's default capabilities, as berthd gives them.
	want := "hi there\nfrom-host\nCapEff:\t00000000a80425fb\nSeccomp:\t2\nflags\n"
	got := strings.ReplaceAll(r.stdout, "NoNewPrivs:\t0\n", "")
	if r.code != 0 || got != want {
		t.Errorf("run = exit %d, stdout:\n%s\nwant:\n%s\nstderr:\n%s", r.code, r.stdout, want, r.stderr)
	}
	// -i sends stdin through Attach; the exit code is still the container's.
	r = e.berthctlWithStdin(t, "hello\n", "run", "--rm", "-i", e.image, "sh", "-c", "read x; echo got $x; exit 4")
	if r.code != 4 || r.stdout != "got hello\n" {
		t.Errorf("run -i = exit %d, stdout %q, stderr %q; want 4 and %q", r.code, r.stdout, r.stderr, "got hello\n")
	}
	e.requireRunLeftNothing(t, before)
}

// run -it gives the container a terminal joined to berthctl's: what is
// typed reaches it, its output comes back, and its code is run's.
func TestFirstRunInteractiveTerminal(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("script(1) is not installed (bsdutils)")
	}
	e := startFirstRunEnv(t, firstRunOptions{})
	before := podLogDirs(t)
	ctx, cancel := context.WithTimeout(e.d.Ctx(t), 3*time.Minute)
	defer cancel()
	argv := []string{filepath.Join(e.d.BinDir, "berthctl"), "-endpoint", e.d.Socket, "run", "--rm", "-it", e.image,
		"sh", "-c", `read x; [ -t 0 ] && echo "got $x on a tty"; exit 5`}
	out, code := cliCmd(t, ctx, "script", "typed\n", withPty(argv...)...)
	if code != 5 || !strings.Contains(out, "got typed on a tty") {
		t.Errorf("run -it: exit %d, output %q; want 5 and %q", code, out, "got typed on a tty")
	}
	e.requireRunLeftNothing(t, before)
}

// make install puts the CNI config only on a node with none, crictl.yaml
// only where there is none, and the shell completion.
func TestFirstRunMakeInstallContrib(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	install := func(destdir string) {
		t.Helper()
		cmd := exec.Command("make", "-s", "-C", framework.RepoRoot(), "install-contrib", "DESTDIR="+destdir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make install-contrib: %v\n%s", err, out)
		}
	}
	same := func(installed, shipped string) {
		t.Helper()
		a, err1 := os.ReadFile(installed)
		b, err2 := os.ReadFile(filepath.Join(framework.RepoRoot(), shipped))
		if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
			t.Errorf("%s is not %s: %v %v", installed, shipped, err1, err2)
		}
	}

	fresh := t.TempDir()
	install(fresh)
	same(filepath.Join(fresh, "etc/cni/net.d/10-berth-bridge.conflist"), "contrib/cni/10-berth-bridge.conflist")
	same(filepath.Join(fresh, "etc/crictl.yaml"), "contrib/crictl.yaml")
	same(filepath.Join(fresh, "usr/local/share/bash-completion/completions/berthctl"), "contrib/completion/berthctl.bash")
	same(filepath.Join(fresh, "usr/local/share/zsh/site-functions/_berthctl"), "contrib/completion/_berthctl")

	// A node with its own files keeps them as they are.
	node := t.TempDir()
	for p, content := range map[string]string{"etc/cni/net.d/87-podman.conf": "{}", "etc/crictl.yaml": "mine\n"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(node, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(node, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	install(node)
	if entries, _ := os.ReadDir(filepath.Join(node, "etc/cni/net.d")); len(entries) != 1 {
		t.Errorf("a node with a CNI config got another: %v", entries)
	}
	if b, _ := os.ReadFile(filepath.Join(node, "etc/crictl.yaml")); string(b) != "mine\n" {
		t.Errorf("crictl.yaml overwritten: %q", b)
	}
}

// The completion scripts complete commands, and pod IDs from the
// endpoint the command line names.
func TestFirstRunCompletion(t *testing.T) {
	e := startFirstRunEnv(t, firstRunOptions{})
	id := runPod(t, e.d, podConfig("complete-me"))
	complete := func(words ...string) string {
		t.Helper()
		script := fmt.Sprintf(`source %q
COMP_WORDS=(%s)
COMP_CWORD=%d
_berthctl
printf '%%s\n' "${COMPREPLY[@]}"`, filepath.Join(framework.RepoRoot(), "contrib/completion/berthctl.bash"),
			shellQuote(words), len(words)-1)
		cmd := exec.Command("bash", "--norc", "--noprofile", "-c", script)
		cmd.Env = append(os.Environ(), "PATH="+e.d.BinDir+":"+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("bash: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := complete("berthctl", "inspe"); got != "inspect\ninspecti\ninspectp" {
		t.Errorf("berthctl inspe<TAB> = %q", got)
	}
	if got := complete("berthctl", "-endpoint", e.d.Socket, "inspectp", ""); got != id[:13] {
		t.Errorf("berthctl inspectp <TAB> = %q, want the pod's ID %s", got, id[:13])
	}
	// Commands of the streaming and stats areas, and a flag's value.
	for _, words := range [][]string{{"port-forward", ""}, {"statsp", ""}, {"stats", "-pod", ""}, {"ps", "-a", "-pod", ""}} {
		if got := complete(append([]string{"berthctl", "-endpoint", e.d.Socket}, words...)...); got != id[:13] {
			t.Errorf("berthctl %s<TAB> = %q, want the pod's ID %s", strings.Join(words, " "), got, id[:13])
		}
	}

	if _, err := exec.LookPath("zsh"); err != nil {
		t.Skip("zsh is not installed (apt-get install zsh): the zsh script is not checked")
	}
	// zsh's compadd and _files stand in as printers: the script's part is
	// asking berthctl and choosing between them.
	zcomplete := func(words ...string) string {
		t.Helper()
		script := fmt.Sprintf(`compadd() { [[ $1 == -- ]] && shift; print -l -- "$@"; }
_files() { print FILES; }
words=(%s)
CURRENT=%d
source %q`, shellQuote(words), len(words), filepath.Join(framework.RepoRoot(), "contrib/completion/_berthctl"))
		cmd := exec.Command("zsh", "-f", "-c", script)
		cmd.Env = append(os.Environ(), "PATH="+e.d.BinDir+":"+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("zsh: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := zcomplete("berthctl", "inspe"); got != "inspect\ninspecti\ninspectp" {
		t.Errorf("zsh: berthctl inspe<TAB> = %q", got)
	}
	if got := zcomplete("berthctl", "-endpoint", e.d.Socket, "inspectp", ""); got != id[:13] {
		t.Errorf("zsh: berthctl inspectp <TAB> = %q, want the pod's ID %s", got, id[:13])
	}
	if got := zcomplete("berthctl", "runp", ""); got != "FILES" {
		t.Errorf("zsh: berthctl runp <TAB> = %q, want file names", got)
	}
}

func shellQuote(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// The README's "Try it" commands, as written: the set-up line is checked
// (every package it names is installed) rather than run, the other two
// run verbatim in the repository's root, with BERTH_CONFIG and
// BERTH_ENDPOINT pointing them at a private berthd, and docker.io
// rewritten to a registry on 127.0.0.1.
func TestReadmeTryIt(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every binary with make run")
	}
	framework.RequireRoot(t)
	for _, tool := range []string{"make", "go", "dpkg-query"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not on PATH", tool)
		}
	}
	cmds := readmeTryIt(t)
	setup, run, try := cmds[0], cmds[1], cmds[2]
	pkgs, ok := strings.CutPrefix(setup, "apt-get install -y ")
	if !ok {
		t.Fatalf("set-up line %q is not apt-get install -y", setup)
	}
	for _, p := range strings.Fields(pkgs) {
		out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", p).Output()
		if err != nil || string(out) != "install ok installed" {
			t.Skipf("package %s of the set-up line is not installed here (%q)", p, out)
		}
	}
	if !strings.HasSuffix(run, " &") || !strings.HasPrefix(try, "bin/berthctl ") {
		t.Fatalf("run line %q, try line %q: the test expects a background berthd and bin/berthctl", run, try)
	}

	reg := testimage.StartRegistry(t, testimage.RegistryOptions{})
	img, err := testimage.Busybox(testimage.Spec{Name: "readme", Cmd: []string{"/bin/sh"}})
	if err != nil {
		t.Fatal(err)
	}
	reg.Push(t, "library/busybox:latest", img)
	conf := testimage.WriteRegistriesConf(t, testimage.ConfOptions{
		Insecure: []string{reg.Host}, Rewrites: map[string]string{"docker.io": reg.Host},
	})
	// The config keeps the node's default, fallback_config = "none" (the
	// framework writes it); the pod network comes from what `make run`
	// asks for, pointed at a network of the test's own instead of berth0.
	n := newTestNet(t)
	d := framework.StartDaemon(t, framework.Options{Shell: run,
		Env: []string{"RUN_NETWORK_FALLBACK=" + n.writeShipped(t, t.TempDir())},
		ConfigTOML: fmt.Sprintf(`
[image]
registries_conf = %q
`, conf)})

	before := podLogDirs(t)
	cmd := exec.Command("bash", "-c", try)
	cmd.Dir = framework.RepoRoot()
	cmd.Env = append(os.Environ(), "BERTH_ENDPOINT="+d.Socket)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || stdout.String() != "hello\n" {
		t.Errorf("%s: %v, stdout %q; stderr:\n%s", try, err, stdout.String(), stderr.String())
	}
	(&firstRunEnv{d: d, fallback: n}).requireRunLeftNothing(t, before)
}

// readmeTryIt returns the command lines of the README's "Try it" block.
func readmeTryIt(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(framework.RepoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Try it\n")
	if !ok {
		t.Fatal(`README.md has no "## Try it" section`)
	}
	_, block, ok := strings.Cut(section, "```sh\n")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 {
		t.Fatal(`README.md's "Try it" has no sh block`)
	}
	var cmds []string
	for _, l := range strings.Split(block, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			cmds = append(cmds, l)
		}
	}
	if len(cmds) != 3 {
		t.Fatalf(`README.md's "Try it" has %d commands, want 3 (set up, run, berthctl run): %q`, len(cmds), cmds)
	}
	return cmds
}

// Ctrl-C during the pull stops it: exit 130, no pod, no image.
func TestFirstRunCtrlCDuringPull(t *testing.T) {
	e := startFirstRunEnv(t, firstRunOptions{})
	before := podLogDirs(t)
	e.reg.ResetRequests()
	e.reg.SetBlobDelay(time.Minute)
	cmd := exec.Command(filepath.Join(e.d.BinDir, "berthctl"), "-endpoint", e.d.Socket, "run", "--rm", e.image, "true")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	waitFor(t, func() bool {
		for k := range e.reg.AllRequests() {
			if strings.HasPrefix(k, "GET /v2/") && strings.Contains(k, "/blobs/") {
				return true
			}
		}
		return false
	})
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("exit code after Ctrl-C in the pull = %d, want 130; stderr:\n%s", code, stderr.String())
	}
	e.reg.SetBlobDelay(0)
	resp, err := e.d.Image.ImageStatus(e.d.Ctx(t), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: e.image}})
	if err != nil || resp.Image != nil {
		t.Errorf("image after a cancelled pull: %v, %v; want none", resp.GetImage(), err)
	}
	e.requireRunLeftNothing(t, before)
}
