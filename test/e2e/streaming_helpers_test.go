package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	utilexec "k8s.io/client-go/util/exec"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// syncBuffer is a bytes.Buffer safe to read while a stream writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// protocols are the two transports kubelet's clients use. The WebSocket
// one is channel.k8s.io v4: k8s.io/cri-streaming serves WebSocket up to
// v4, and clients that ask for v5 only (client-go's default) fall back to
// SPDY, as kubectl and crictl do.
var protocols = []string{"spdy", "websocket"}

// executor is client-go's remotecommand executor for url over proto.
func executor(t testing.TB, proto, rawURL string) remotecommand.Executor {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("stream URL %q: %v", rawURL, err)
	}
	cfg := &rest.Config{Host: u.Scheme + "://" + u.Host}
	var ex remotecommand.Executor
	switch proto {
	case "spdy":
		ex, err = remotecommand.NewSPDYExecutor(cfg, "POST", u)
	case "websocket":
		ex, err = remotecommand.NewWebSocketExecutorForProtocols(cfg, "GET", rawURL, "v4.channel.k8s.io")
	}
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

// execURL asks berthd for an exec URL.
func (e *ctrEnv) execURL(t testing.TB, req *runtimeapi.ExecRequest) string {
	t.Helper()
	resp, err := e.d.Runtime.Exec(e.d.Ctx(t), req)
	if err != nil {
		t.Fatalf("Exec %q: %v", req.Cmd, err)
	}
	return resp.Url
}

// streamed is what a finished exec or attach session gave.
type streamed struct {
	stdout, stderr string
	code           int // the command's exit code; -1 when err is not an exit
	err            error
}

// streamExec runs cmd in id over proto with opts' stdin and tty.
func (e *ctrEnv) streamExec(t testing.TB, proto, id string, opts remotecommand.StreamOptions, cmd ...string) streamed {
	t.Helper()
	u := e.execURL(t, &runtimeapi.ExecRequest{ContainerId: id, Cmd: cmd, Tty: opts.Tty,
		Stdin: opts.Stdin != nil, Stdout: true, Stderr: !opts.Tty})
	return runStream(e.d.Ctx(t), t, proto, u, opts)
}

func runStream(ctx context.Context, t testing.TB, proto, u string, opts remotecommand.StreamOptions) streamed {
	t.Helper()
	var out, errOut syncBuffer
	opts.Stdout = &out
	if !opts.Tty {
		opts.Stderr = &errOut
	}
	err := executor(t, proto, u).StreamWithContext(ctx, opts)
	s := streamed{stdout: out.String(), stderr: errOut.String(), code: 0, err: err}
	var exitErr utilexec.ExitError
	switch {
	case errors.As(err, &exitErr) && exitErr.Exited():
		s.code, s.err = exitErr.ExitStatus(), nil
	case err != nil:
		s.code = -1
	}
	return s
}

// sizeQueue hands out the terminal sizes a test pushes.
type sizeQueue chan remotecommand.TerminalSize

func (q sizeQueue) Next() *remotecommand.TerminalSize {
	sz, ok := <-q
	if !ok {
		return nil
	}
	return &sz
}

// portForwarder forwards a free local port to port in pod over SPDY and
// returns the local port; it stops when the test ends.
func (e *ctrEnv) portForwarder(t testing.TB, pod string, port int) int {
	t.Helper()
	return e.stoppablePortForwarder(t, pod, port).local
}

type forwarder struct {
	local int
	stop  func()
}

// stoppablePortForwarder is portForwarder with a stop of its own (it
// hangs up on the streaming server).
func (e *ctrEnv) stoppablePortForwarder(t testing.TB, pod string, port int) forwarder {
	t.Helper()
	resp, err := e.d.Runtime.PortForward(e.d.Ctx(t), &runtimeapi.PortForwardRequest{PodSandboxId: pod, Port: []int32{int32(port)}})
	if err != nil {
		t.Fatalf("PortForward: %v", err)
	}
	u, err := url.Parse(resp.Url)
	if err != nil {
		t.Fatal(err)
	}
	transport, upgrader, err := spdy.RoundTripperFor(&rest.Config{Host: u.Scheme + "://" + u.Host})
	if err != nil {
		t.Fatal(err)
	}
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, "POST", u)
	stop, ready := make(chan struct{}), make(chan struct{})
	pf, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:" + strconv.Itoa(port)}, stop, ready, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- pf.ForwardPorts() }()
	var once sync.Once
	stopFn := func() { once.Do(func() { close(stop); <-done }) }
	t.Cleanup(stopFn)
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("port-forward: %v", err)
	}
	ports, err := pf.GetPorts()
	if err != nil || len(ports) != 1 {
		t.Fatalf("port-forward ports %v: %v", ports, err)
	}
	return forwarder{local: int(ports[0].Local), stop: stopFn}
}

// berthdSocketsTo counts berthd's open sockets connected to port in the
// network namespace netns: the namespace's TCP table names the sockets
// whose peer is port, berthd's fds say which of them it holds.
func berthdSocketsTo(t testing.TB, pid int, netns string, port int) int {
	t.Helper()
	var table []byte
	inNetNS(t.(*testing.T), netns, func() (err error) {
		table, err = os.ReadFile("/proc/thread-self/net/tcp")
		return err
	})
	inodes := map[string]bool{}
	for _, l := range strings.Split(string(table), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) < 10 {
			continue
		}
		// rem_address is HEXIP:HEXPORT
		if rp := f[2][strings.LastIndex(f[2], ":")+1:]; rp == fmt.Sprintf("%04X", port) {
			inodes["socket:["+f[9]+"]"] = true
		}
	}
	fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	n := 0
	for _, fd := range fds {
		if l, err := os.Readlink(fd); err == nil && inodes[l] {
			n++
		}
	}
	return n
}

// monitorsOf lists the berth-monitor processes supervising container id
// (its own and those of exec sessions in it).
func monitorsOf(t testing.TB, id string) []int {
	t.Helper()
	return monitorProcs()[id]
}

// monitoredIDs are the container ids some berth-monitor process names.
func monitoredIDs() map[string]bool {
	ids := map[string]bool{}
	for id := range monitorProcs() {
		ids[id] = true
	}
	return ids
}

// monitorProcs maps each container id a berth-monitor process names
// (--id) to the pids of those processes.
func monitorProcs() map[string][]int {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	out := map[string][]int{}
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) >= 3 && filepath.Base(args[0]) == "berth-monitor" && args[1] == "--id" {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			out[args[2]] = append(out[args[2]], pid)
		}
	}
	return out
}

// processes lists the command lines of the container's processes, from
// inside (ps of busybox).
func (e *ctrEnv) processes(t testing.TB, id string) string {
	t.Helper()
	r := e.exec(t, id, 30, "ps", "-o", "args")
	return string(r.Stdout)
}

func trimLines(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }
