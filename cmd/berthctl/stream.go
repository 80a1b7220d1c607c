package main

// The streaming commands: exec -i/-t, attach and port-forward get a URL
// from the CRI endpoint (Exec, Attach, PortForward) and speak to it with
// client-go's remotecommand and portforward packages, the code kubectl and
// crictl use, over SPDY as crictl does by default. (No WebSocket-first
// fallback as kubectl has towards the API server: a CRI URL is
// single-use, so a refused WebSocket attempt would spend it.)

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/term"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	utilexec "k8s.io/client-go/util/exec"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func init() {
	register(&command{name: "attach", usage: "[-i] [-t] ID", summary: "attach to a running container's output (and stdin with -i)", run: runAttach})
	register(&command{name: "port-forward", usage: "POD LOCAL:REMOTE...", summary: "forward local ports to ports in a pod until interrupted", run: runPortForward})
}

// streamExec runs cmd through Exec and a stream; it exits with the
// command's code.
func streamExec(c *cli, id string, cmd []string, stdin, tty bool) error {
	ctx, cancel := c.ctx()
	resp, err := c.rt.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: id, Cmd: cmd, Stdin: stdin, Tty: tty, Stdout: true, Stderr: !tty})
	cancel()
	if err != nil {
		return err
	}
	return stream(resp.Url, stdin, tty)
}

func runAttach(c *cli, args []string) error {
	fs := flag.NewFlagSet("attach", flag.ContinueOnError)
	stdin := fs.Bool("i", false, "send stdin to the container (created with stdin)")
	tty := fs.Bool("t", false, "the container has a tty: raw terminal, resizes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("want one container ID")
	}
	ctx, cancel := c.ctx()
	resp, err := c.rt.Attach(ctx, &runtimeapi.AttachRequest{ContainerId: fs.Arg(0), Stdin: *stdin, Tty: *tty, Stdout: true, Stderr: !*tty})
	cancel()
	if err != nil {
		return err
	}
	return stream(resp.Url, *stdin, *tty)
}

// stream connects this process's stdio to a remotecommand URL and exits
// with the remote command's code when it reports one.
func stream(rawURL string, stdin, tty bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	err := streamStdio(ctx, rawURL, stdin, true, tty)
	var exitErr utilexec.ExitError
	if errors.As(err, &exitErr) && exitErr.Exited() {
		os.Exit(exitErr.ExitStatus()) // the terminal is restored by now
	}
	return err
}

// streamStdio connects stdin (with stdin) and stdout and stderr (with
// output) to a remotecommand URL until the stream ends or ctx does. With
// tty and a terminal on stdin, the terminal is raw for the session and its
// size follows the window's; it is restored before streamStdio returns.
func streamStdio(ctx context.Context, rawURL string, stdin, output, tty bool) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("stream URL %q: %w", rawURL, err)
	}
	exec, err := executor(u)
	if err != nil {
		return err
	}
	opts := remotecommand.StreamOptions{Tty: tty}
	if output {
		opts.Stdout = os.Stdout
		if !tty {
			opts.Stderr = os.Stderr
		}
	}
	if stdin {
		opts.Stdin = os.Stdin
	}
	fd := int(os.Stdin.Fd())
	if tty && term.IsTerminal(fd) {
		old, err := term.MakeRaw(fd)
		if err != nil {
			return fmt.Errorf("raw terminal: %w", err)
		}
		defer term.Restore(fd, old)
		sizes := newWindowSizes(fd)
		defer sizes.stop()
		opts.TerminalSizeQueue = sizes
	}
	return exec.StreamWithContext(ctx, opts)
}

// executor speaks SPDY to the URL.
func executor(u *url.URL) (remotecommand.Executor, error) {
	return remotecommand.NewSPDYExecutor(&rest.Config{Host: u.Scheme + "://" + u.Host}, "POST", u)
}

// windowSizes is the terminal's size, then each change (SIGWINCH).
type windowSizes struct {
	fd    int
	sig   chan os.Signal
	first bool
}

func newWindowSizes(fd int) *windowSizes {
	w := &windowSizes{fd: fd, sig: make(chan os.Signal, 1), first: true}
	signal.Notify(w.sig, syscall.SIGWINCH)
	return w
}

func (w *windowSizes) Next() *remotecommand.TerminalSize {
	if !w.first {
		if _, ok := <-w.sig; !ok {
			return nil
		}
	}
	w.first = false
	cols, rows, err := term.GetSize(w.fd)
	if err != nil {
		return nil
	}
	return &remotecommand.TerminalSize{Width: uint16(cols), Height: uint16(rows)}
}

func (w *windowSizes) stop() {
	signal.Stop(w.sig)
	close(w.sig)
}

func runPortForward(c *cli, args []string) error {
	fs := flag.NewFlagSet("port-forward", flag.ContinueOnError)
	addr := fs.String("address", "127.0.0.1", "local addresses to listen on, comma separated")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 2 {
		return fmt.Errorf("want POD LOCAL:REMOTE...")
	}
	var ports []int32
	for _, p := range fs.Args()[1:] {
		remote := p[strings.LastIndex(p, ":")+1:]
		var n int32
		if _, err := fmt.Sscanf(remote, "%d", &n); err != nil {
			return fmt.Errorf("port %q: want LOCAL:REMOTE", p)
		}
		ports = append(ports, n)
	}
	ctx, cancel := c.ctx()
	resp, err := c.rt.PortForward(ctx, &runtimeapi.PortForwardRequest{PodSandboxId: fs.Arg(0), Port: ports})
	cancel()
	if err != nil {
		return err
	}
	u, err := url.Parse(resp.Url)
	if err != nil {
		return fmt.Errorf("port-forward URL %q: %w", resp.Url, err)
	}
	transport, upgrader, err := spdy.RoundTripperFor(&rest.Config{Host: u.Scheme + "://" + u.Host})
	if err != nil {
		return err
	}
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, "POST", u)
	stopCh := make(chan struct{})
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() { <-sigs; close(stopCh) }()
	pf, err := portforward.NewOnAddresses(dialer, strings.Split(*addr, ","), fs.Args()[1:], stopCh, nil, os.Stdout, os.Stderr)
	if err != nil {
		return err
	}
	return pf.ForwardPorts()
}
