package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"k8s.io/client-go/tools/remotecommand"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// streamEnv is a running container to exec in, in a pod with its own
// (loopback-only) network namespace.
func streamEnv(t *testing.T) (*ctrEnv, string, string) {
	t.Helper()
	e := startContainerEnv(t)
	handlers := handlerNames(t)
	if len(handlers) == 0 {
		t.Skip("no runtime handler")
	}
	pod := e.pod(t, handlers[0], runtimeapi.NamespaceMode_CONTAINER)
	id := e.run(t, pod, e.config("shell", "sleep", "3600"))
	return e, pod, id
}

// Exec over both transports: output on its own streams, the exit code
// reported as kubectl reads it, stdin, and a tty sized by the client.
func TestStreamingExec(t *testing.T) {
	e, _, id := streamEnv(t)
	for _, proto := range protocols {
		t.Run(proto, func(t *testing.T) {
			s := e.streamExec(t, proto, id, remotecommand.StreamOptions{}, "sh", "-c", "echo out; echo err >&2; exit 3")
			if s.err != nil || s.code != 3 || s.stdout != "out\n" || s.stderr != "err\n" {
				t.Errorf("exec: stdout %q stderr %q code %d err %v; want out, err, 3", s.stdout, s.stderr, s.code, s.err)
			}
			s = e.streamExec(t, proto, id, remotecommand.StreamOptions{}, "true")
			if s.err != nil || s.code != 0 {
				t.Errorf("exec true: code %d err %v", s.code, s.err)
			}
			// stdin: its end is the command's end of input. (WebSocket
			// v4 cannot say that stdin ended: that is what v5 added.)
			if proto == "websocket" {
				s = e.streamExec(t, proto, id, remotecommand.StreamOptions{Stdin: strings.NewReader("echo in; exit 9\n")}, "sh")
				if s.err != nil || s.code != 9 || s.stdout != "in\n" {
					t.Errorf("exec with stdin: stdout %q code %d err %v, want in, 9", s.stdout, s.code, s.err)
				}
			} else {
				s = e.streamExec(t, proto, id, remotecommand.StreamOptions{Stdin: strings.NewReader("line one\nline two\n")}, "sh", "-c", "cat; echo done")
				if s.err != nil || s.code != 0 || s.stdout != "line one\nline two\ndone\n" {
					t.Errorf("exec with stdin: stdout %q code %d err %v", s.stdout, s.code, s.err)
				}
			}
			// A tty: one output stream, the client's size from the start.
			sizes := make(sizeQueue, 1)
			sizes <- remotecommand.TerminalSize{Width: 123, Height: 45}
			close(sizes)
			s = e.streamExec(t, proto, id, remotecommand.StreamOptions{Tty: true, TerminalSizeQueue: sizes}, "sh", "-c", "stty size; tty; echo $TERM; exit 5")
			if s.err != nil || s.code != 5 || !strings.Contains(s.stdout, "45 123\r\n/dev/pts/") || !strings.Contains(s.stdout, "xterm") {
				t.Errorf("exec with tty: stdout %q code %d err %v; want 45 123, a pts, xterm, code 5", s.stdout, s.code, s.err)
			}
		})
	}
}

// An interactive shell on a tty: input, resizes in the middle of the
// session, and the shell's exit code.
func TestStreamingExecTTYResize(t *testing.T) {
	e, _, id := streamEnv(t)
	for _, proto := range protocols {
		t.Run(proto, func(t *testing.T) {
			inR, inW := io.Pipe()
			defer inW.Close()
			sizes := make(sizeQueue, 4)
			sizes <- remotecommand.TerminalSize{Width: 80, Height: 24}
			defer close(sizes)
			u := e.execURL(t, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"sh"}, Tty: true, Stdin: true, Stdout: true})
			var out syncBuffer
			done := make(chan error, 1)
			go func() {
				done <- executor(t, proto, u).StreamWithContext(e.d.Ctx(t), remotecommand.StreamOptions{
					Stdin: inR, Stdout: &out, Tty: true, TerminalSizeQueue: sizes})
			}()
			io.WriteString(inW, "stty size\n")
			waitFor(t, func() bool { return strings.Contains(out.String(), "24 80") })
			sizes <- remotecommand.TerminalSize{Width: 132, Height: 50}
			// The size applies asynchronously: ask until the shell sees it.
			waitFor(t, func() bool {
				io.WriteString(inW, "stty size\n")
				time.Sleep(100 * time.Millisecond)
				return strings.Contains(out.String(), "50 132")
			})
			io.WriteString(inW, "exit 7\n")
			err := <-done
			if err == nil || !strings.Contains(err.Error(), "exit code 7") {
				t.Errorf("shell exit: %v, want exit code 7\n%s", err, out.String())
			}
		})
	}
}

// A client that goes away ends its session: the command is killed, its
// monitor exits and its scratch files go.
func TestStreamingExecDisconnect(t *testing.T) {
	e, _, id := streamEnv(t)
	before := len(monitorsOf(t, id))
	for _, proto := range protocols {
		t.Run(proto, func(t *testing.T) {
			for _, tty := range []bool{false, true} {
				ctx, cancel := context.WithCancel(e.d.Ctx(t))
				u := e.execURL(t, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"sleep", "4242"}, Tty: tty, Stdout: true, Stdin: true})
				done := make(chan error, 1)
				inR, inW := io.Pipe()
				go func() {
					done <- executor(t, proto, u).StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: inR, Stdout: io.Discard, Tty: tty})
				}()
				waitFor(t, func() bool { return strings.Contains(e.processes(t, id), "sleep 4242") })
				if n := len(monitorsOf(t, id)); n != before+1 {
					t.Errorf("tty %v: %d monitors during the session, want %d", tty, n, before+1)
				}
				cancel()
				<-done
				inW.Close()
				waitFor(t, func() bool { return !strings.Contains(e.processes(t, id), "sleep 4242") })
				waitFor(t, func() bool { return len(monitorsOf(t, id)) == before })
				left, _ := filepath.Glob(filepath.Join(e.d.RunRoot, "containers", id, "exec-*"))
				waitFor(t, func() bool {
					left, _ = filepath.Glob(filepath.Join(e.d.RunRoot, "containers", id, "exec-*"))
					return len(left) == 0
				})
			}
		})
	}
}

// Attach joins a running shell: its stdin, its output from then on, and
// the end of the session when the container exits.
func TestStreamingAttach(t *testing.T) {
	e := startContainerEnv(t)
	handlers := handlerNames(t)
	if len(handlers) == 0 {
		t.Skip("no runtime handler")
	}
	pod := e.pod(t, handlers[0], runtimeapi.NamespaceMode_CONTAINER)
	for _, proto := range protocols {
		for _, tty := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/tty=%v", proto, tty), func(t *testing.T) {
				cfg := e.config(fmt.Sprintf("attach-%s-%v", proto, tty), "sh")
				cfg.Stdin, cfg.Tty = true, tty
				id := e.run(t, pod, cfg)
				resp, err := e.d.Runtime.Attach(e.d.Ctx(t), &runtimeapi.AttachRequest{ContainerId: id, Stdin: true, Stdout: true, Stderr: !tty, Tty: tty})
				if err != nil {
					t.Fatalf("Attach: %v", err)
				}
				inR, inW := io.Pipe()
				defer inW.Close()
				var out, errOut syncBuffer
				opts := remotecommand.StreamOptions{Stdin: inR, Stdout: &out, Tty: tty}
				if tty {
					sizes := make(sizeQueue, 1)
					sizes <- remotecommand.TerminalSize{Width: 99, Height: 33}
					defer close(sizes)
					opts.TerminalSizeQueue = sizes
				} else {
					opts.Stderr = &errOut
				}
				done := make(chan error, 1)
				go func() { done <- executor(t, proto, resp.Url).StreamWithContext(e.d.Ctx(t), opts) }()
				waitFor(t, func() bool {
					io.WriteString(inW, "echo attached-$((6*7))\n")
					time.Sleep(100 * time.Millisecond)
					return strings.Contains(out.String(), "attached-42")
				})
				if tty {
					waitFor(t, func() bool {
						io.WriteString(inW, "stty size\n")
						time.Sleep(100 * time.Millisecond)
						return strings.Contains(out.String(), "33 99")
					})
				} else {
					io.WriteString(inW, "echo to-stderr >&2\n")
					waitFor(t, func() bool { return strings.Contains(errOut.String(), "to-stderr") })
				}
				io.WriteString(inW, "exit 0\n")
				if err := <-done; err != nil {
					t.Errorf("attach ended with %v, want nil when the container exits", err)
				}
				if st := e.waitExit(t, id); st.ExitCode != 0 {
					t.Errorf("container exit code %d", st.ExitCode)
				}
			})
		}
	}
}

// stdin_once: the container's input ends when the first attach ends.
func TestStreamingAttachStdinOnce(t *testing.T) {
	e := startContainerEnv(t)
	handlers := handlerNames(t)
	if len(handlers) == 0 {
		t.Skip("no runtime handler")
	}
	pod := e.pod(t, handlers[0], runtimeapi.NamespaceMode_CONTAINER)
	cfg := e.config("once", "sh", "-c", "cat; echo stdin-closed")
	cfg.Stdin, cfg.StdinOnce = true, true
	id := e.run(t, pod, cfg)
	resp, err := e.d.Runtime.Attach(e.d.Ctx(t), &runtimeapi.AttachRequest{ContainerId: id, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		t.Fatalf("Attach: %v", err)
	}
	s := runStream(e.d.Ctx(t), t, "spdy", resp.Url, remotecommand.StreamOptions{Stdin: strings.NewReader("hello once\n")})
	if s.err != nil || !strings.Contains(s.stdout, "stdin-closed") {
		t.Errorf("attach: stdout %q err %v; want the container to see its stdin end", s.stdout, s.err)
	}
	if st := e.waitExit(t, id); st.ExitCode != 0 {
		t.Errorf("exit code %d", st.ExitCode)
	}
	e.waitLog(t, id, "hello once\nstdin-closed")
}

// Port-forward reaches a server inside the pod's network namespace, on
// IPv4 and on IPv6 loopback, and reports a closed port on the stream.
func TestStreamingPortForward(t *testing.T) {
	e := startContainerEnv(t)
	handlers := handlerNames(t)
	if len(handlers) == 0 {
		t.Skip("no runtime handler")
	}
	pod := e.pod(t, handlers[0], runtimeapi.NamespaceMode_CONTAINER)
	netns := podStatus(t, e.d, pod).Info.Namespaces["network"]
	if netns == "" {
		t.Fatal("pod has no network namespace")
	}
	serveInNetNS(t, netns, "127.0.0.1:7070", "hello over ipv4\n")
	serveInNetNS(t, netns, "[::1]:7171", "hello over ipv6\n")
	// Nothing of the pod listens on the host.
	if c, err := net.Dial("tcp", "127.0.0.1:7070"); err == nil {
		c.Close()
		t.Skip("something on the host listens on 7070")
	}
	for port, want := range map[int]string{7070: "hello over ipv4\n", 7171: "hello over ipv6\n"} {
		local := e.portForwarder(t, pod, port)
		for i := 0; i < 2; i++ { // one forwarder, several connections
			c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(local)))
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(c)
			c.Close()
			if err != nil || string(b) != want {
				t.Errorf("port %d: read %q, %v; want %q", port, b, err, want)
			}
		}
	}
	// An echo server: data goes both ways, and the client's half-close
	// reaches the pod.
	var ln net.Listener
	inNetNS(t, netns, func() (err error) { ln, err = net.Listen("tcp", "127.0.0.1:7272"); return err })
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		b, _ := io.ReadAll(c)
		c.Write([]byte(strings.ToUpper(string(b))))
		c.Close()
	}()
	local := e.portForwarder(t, pod, 7272)
	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(local)))
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("ping"))
	c.(*net.TCPConn).CloseWrite()
	b, _ := io.ReadAll(c)
	c.Close()
	if string(b) != "PING" {
		t.Errorf("echo through port-forward: %q, want PING", b)
	}

	// A client that goes away ends its connections to the pod even when the
	// pod's server neither writes nor closes: berthd holds no socket to it.
	inNetNS(t, netns, func() (err error) { ln, err = net.Listen("tcp", "127.0.0.1:7676"); return err })
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
	}()
	stopForward := e.stoppablePortForwarder(t, pod, 7676)
	local = stopForward.local
	c, err = net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(local)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	silent := <-accepted
	defer silent.Close()
	if n := berthdSocketsTo(t, e.d.PID(), netns, 7676); n != 1 {
		t.Errorf("berthd holds %d sockets to the pod's port 7676, want 1", n)
	}
	stopForward.stop()
	waitFor(t, func() bool { return berthdSocketsTo(t, e.d.PID(), netns, 7676) == 0 })

	// A port nobody listens on: the error comes back on the stream's
	// error channel (client-go logs it and closes the local connection).
	local = e.portForwarder(t, pod, 7373)
	c, err = net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(local)))
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	b, err = io.ReadAll(c)
	c.Close()
	if len(b) != 0 {
		t.Errorf("closed port gave data %q", b)
	}
	waitFor(t, func() bool { return strings.Contains(e.d.Log(), "nothing listens on port 7373") })
}

// Bad requests get the codes kubelet expects, and a URL works once.
func TestStreamingBadInput(t *testing.T) {
	e, pod, id := streamEnv(t)
	ctx := e.d.Ctx(t)
	created := e.create(t, pod, e.config("created", "sleep", "3600"))

	_, err := e.d.Runtime.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: "nonexistent", Cmd: []string{"true"}, Stdout: true})
	wantCode(t, "Exec unknown container", err, codes.NotFound)
	_, err = e.d.Runtime.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: created, Cmd: []string{"true"}, Stdout: true})
	wantCode(t, "Exec in a created container", err, codes.FailedPrecondition)
	_, err = e.d.Runtime.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: id, Stdout: true})
	wantCode(t, "Exec without cmd", err, codes.InvalidArgument)
	_, err = e.d.Runtime.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"sh"}, Tty: true, Stdout: true, Stderr: true})
	wantCode(t, "Exec tty with stderr", err, codes.InvalidArgument)
	_, err = e.d.Runtime.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"true"}})
	wantCode(t, "Exec with no stream", err, codes.InvalidArgument)

	_, err = e.d.Runtime.Attach(ctx, &runtimeapi.AttachRequest{ContainerId: "nonexistent", Stdout: true})
	wantCode(t, "Attach unknown container", err, codes.NotFound)
	_, err = e.d.Runtime.Attach(ctx, &runtimeapi.AttachRequest{ContainerId: created, Stdout: true})
	wantCode(t, "Attach to a created container", err, codes.FailedPrecondition)
	_, err = e.d.Runtime.Attach(ctx, &runtimeapi.AttachRequest{ContainerId: id, Tty: true, Stdout: true, Stderr: true})
	wantCode(t, "Attach tty with stderr", err, codes.InvalidArgument)

	_, err = e.d.Runtime.PortForward(ctx, &runtimeapi.PortForwardRequest{PodSandboxId: "nonexistent", Port: []int32{80}})
	wantCode(t, "PortForward unknown pod", err, codes.NotFound)
	_, err = e.d.Runtime.PortForward(ctx, &runtimeapi.PortForwardRequest{PodSandboxId: pod, Port: []int32{70000}})
	wantCode(t, "PortForward port out of range", err, codes.InvalidArgument)

	// A command that is not there fails the session, not berthd.
	s := e.streamExec(t, "spdy", id, remotecommand.StreamOptions{}, "/no/such/binary")
	if s.err == nil && s.code == 0 {
		t.Errorf("exec of a missing binary succeeded: %+v", s)
	}

	// Tokens are single-use.
	u := e.execURL(t, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"true"}, Stdout: true, Stderr: true})
	if s := runStream(ctx, t, "spdy", u, remotecommand.StreamOptions{}); s.err != nil {
		t.Fatalf("first use of the URL: %v", s.err)
	}
	if s := runStream(ctx, t, "spdy", u, remotecommand.StreamOptions{}); s.err == nil {
		t.Errorf("second use of the URL worked")
	}
	resp, err := http.Get(u)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET of a used URL: %s, want 404", resp.Status)
		}
	}

	// A stopped pod forwards nothing.
	if _, err := e.d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatal(err)
	}
	_, err = e.d.Runtime.PortForward(ctx, &runtimeapi.PortForwardRequest{PodSandboxId: pod, Port: []int32{80}})
	wantCode(t, "PortForward to a stopped pod", err, codes.FailedPrecondition)
	_, err = e.d.Runtime.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"true"}, Stdout: true})
	wantCode(t, "Exec in a stopped pod's container", err, codes.FailedPrecondition)
}
