package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// criToolsVersion is the cri-tools release whose crictl the tests run.
const criToolsVersion = "v1.37.0"

var (
	crictlOnce sync.Once
	crictlPath string
	crictlErr  error
)

// crictl returns a crictl binary: $BERTH_TEST_CRICTL, or one built from
// sigs.k8s.io/cri-tools at criToolsVersion through the Go module proxy,
// kept in the user's cache directory.
func crictl(t *testing.T) string {
	t.Helper()
	crictlOnce.Do(func() {
		if p := os.Getenv("BERTH_TEST_CRICTL"); p != "" {
			crictlPath = p
			return
		}
		cache, err := os.UserCacheDir()
		if err != nil {
			crictlErr = err
			return
		}
		crictlPath = filepath.Join(cache, "berth-test", "cri-tools-"+criToolsVersion, "crictl")
		if _, err := os.Stat(crictlPath); err == nil {
			return
		}
		crictlErr = buildCrictl(crictlPath)
	})
	if crictlErr != nil {
		t.Skipf("no crictl (set BERTH_TEST_CRICTL, or let the test build it through the module proxy): %v", crictlErr)
	}
	return crictlPath
}

func buildCrictl(out string) error {
	work, err := os.MkdirTemp("", "crictl-build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	goBin := "go"
	if p, err := exec.LookPath("go"); err == nil {
		goBin = p
	}
	run := func(dir string, args ...string) ([]byte, error) {
		cmd := exec.Command(goBin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
		return cmd.Output()
	}
	dir, err := run(work, "mod", "download", "-json", "sigs.k8s.io/cri-tools@"+criToolsVersion)
	if err != nil {
		return fmt.Errorf("go mod download cri-tools: %w", err)
	}
	var src string
	for _, l := range strings.Split(string(dir), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), `"Dir": "`); ok {
			src = strings.TrimSuffix(v, `",`)
		}
	}
	if src == "" {
		return fmt.Errorf("go mod download gave no directory")
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	cp := exec.Command("cp", "-r", src+"/.", work+"/src")
	if b, err := cp.CombinedOutput(); err != nil {
		return fmt.Errorf("copy cri-tools: %v: %s", err, b)
	}
	exec.Command("chmod", "-R", "u+w", work+"/src").Run()
	if b, err := run(work+"/src", "build", "-o", out+".tmp", "./cmd/crictl"); err != nil {
		return fmt.Errorf("build crictl: %v: %s", err, b)
	}
	return os.Rename(out+".tmp", out)
}

// cliCmd runs a CLI against berthd, with stdin and a bound on its time.
func cliCmd(t *testing.T, ctx context.Context, bin string, stdin string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v\n%s", bin, args, err, out)
	}
	return string(out), code
}

// withPty runs argv under script(1), so it gets a terminal as stdin.
func withPty(argv ...string) []string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return []string{"-qec", strings.Join(q, " "), "/dev/null"}
}

// freePort returns a TCP port nothing listens on at the moment.
func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// forwardWith runs a port-forward CLI until it reports it is forwarding,
// reads what the pod's server answers through it, and stops it.
func forwardWith(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	sc := bufio.NewScanner(out)
	var local string
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "Forwarding from "); ok {
			local = strings.Fields(rest)[0]
			break
		}
		t.Logf("%s: %s", filepath.Base(bin), sc.Text())
	}
	if local == "" {
		t.Fatalf("%s %v never reported forwarding", bin, args)
	}
	go io.Copy(io.Discard, out)
	c, err := net.Dial("tcp", local)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(time.Minute))
	b, _ := io.ReadAll(c)
	return string(b)
}

// crictl exec -it, exec -i, attach and port-forward, as people use them.
func TestStreamingCrictl(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("script(1) is not installed (bsdutils)")
	}
	e, pod, id := streamEnv(t)
	bin := crictl(t)
	ctx, cancel := context.WithTimeout(e.d.Ctx(t), 5*time.Minute)
	defer cancel()
	ep := []string{"--runtime-endpoint", "unix://" + e.d.Socket, "--image-endpoint", "unix://" + e.d.Socket, "--timeout", "60s"}
	args := func(a ...string) []string { return append(append([]string{}, ep...), a...) }

	out, code := cliCmd(t, ctx, "script", "", withPty(append([]string{bin}, args("exec", "-it", id, "sh", "-c", "tty; echo $((6*7)); exit 3")...)...)...)
	// crictl itself exits 1 and prints the code it was told.
	if code == 0 || !strings.Contains(out, "/dev/pts/") || !strings.Contains(out, "42") || !strings.Contains(out, "exit code 3") {
		t.Errorf("crictl exec -it: code %d, output %q; want a pts, 42, exit code 3", code, out)
	}
	out, code = cliCmd(t, ctx, bin, "from stdin\n", args("exec", "-i", id, "sh", "-c", "cat; echo end")...)
	if code != 0 || !strings.HasSuffix(out, "\nfrom stdin\nend\n") {
		t.Errorf("crictl exec -i: code %d, output %q", code, out)
	}
	out, code = cliCmd(t, ctx, bin, "", args("exec", id, "sh", "-c", "echo plain; exit 4")...)
	if code == 0 || !strings.Contains(out, "plain") || !strings.Contains(out, "exit code 4") {
		t.Errorf("crictl exec: code %d, output %q", code, out)
	}

	cfg := e.config("crictl-attach", "sh")
	cfg.Stdin = true
	aid := e.run(t, pod, cfg)
	out, code = cliCmd(t, ctx, bin, "echo attached-$((6*7))\nexit 0\n", args("attach", "-i", aid)...)
	if code != 0 || !strings.Contains(out, "attached-42") {
		t.Errorf("crictl attach -i: code %d, output %q", code, out)
	}

	netns := podStatus(t, e.d, pod).Info.Namespaces["network"]
	serveInNetNS(t, netns, "127.0.0.1:7474", "hello crictl\n")
	local := freePort(t)
	if got := forwardWith(t, bin, args("port-forward", pod, fmt.Sprintf("%d:7474", local))...); got != "hello crictl\n" {
		t.Errorf("crictl port-forward: read %q", got)
	}
}

// berthctl's streaming commands: exec -i/-t/-stream, attach, port-forward.
func TestStreamingBerthctl(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("script(1) is not installed (bsdutils)")
	}
	e, pod, id := streamEnv(t)
	bin := filepath.Join(e.d.BinDir, "berthctl")
	ctx, cancel := context.WithTimeout(e.d.Ctx(t), 5*time.Minute)
	defer cancel()
	args := func(a ...string) []string { return append([]string{"--endpoint", "unix://" + e.d.Socket}, a...) }

	out, code := cliCmd(t, ctx, "script", "", withPty(append([]string{bin}, args("exec", "-i", "-t", id, "sh", "-c", "tty; exit 6")...)...)...)
	if code != 6 || !strings.Contains(out, "/dev/pts/") {
		t.Errorf("berthctl exec -i -t: code %d, output %q", code, out)
	}
	out, code = cliCmd(t, ctx, bin, "piped\n", args("exec", "-i", id, "cat")...)
	if code != 0 || out != "piped\n" {
		t.Errorf("berthctl exec -i: code %d, output %q", code, out)
	}
	out, code = cliCmd(t, ctx, bin, "", args("exec", "-stream", id, "sh", "-c", "echo streamed; exit 5")...)
	if code != 5 || !strings.Contains(out, "streamed") {
		t.Errorf("berthctl exec -stream: code %d, output %q", code, out)
	}

	cfg := e.config("berthctl-attach", "sh")
	cfg.Stdin = true
	aid := e.run(t, pod, cfg)
	out, code = cliCmd(t, ctx, bin, "echo attached-$((6*7))\nexit 0\n", args("attach", "-i", aid)...)
	if code != 0 || !strings.Contains(out, "attached-42") {
		t.Errorf("berthctl attach -i: code %d, output %q", code, out)
	}

	netns := podStatus(t, e.d, pod).Info.Namespaces["network"]
	serveInNetNS(t, netns, "127.0.0.1:7575", "hello berthctl\n")
	local := freePort(t)
	if got := forwardWith(t, bin, args("port-forward", pod, strconv.Itoa(local)+":7575")...); got != "hello berthctl\n" {
		t.Errorf("berthctl port-forward: read %q", got)
	}
}
