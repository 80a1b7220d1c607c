package runner

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"

	"github.com/containerd/console"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/utils"
)

// stdio owns the runtime's side of a process's standard streams: nothing for
// a detached process without a terminal (it inherits our stdio), pipes copied
// to our stdio for an attached one, or a pty whose master either goes to the
// caller's --console-socket (detached: libcontainer's init sends it over
// SCM_RIGHTS, as runc does) or is relayed to our own terminal (attached).
type stdio struct {
	epoller     *console.Epoller
	console     *console.EpollConsole
	hostConsole console.Console
	closers     []io.Closer
	postStart   []io.Closer
	wg          sync.WaitGroup
	consoleC    chan error
}

func setupIO(p *libcontainer.Process, c *libcontainer.Container, tty, detach bool, sockpath string) (_ *stdio, retErr error) {
	if tty {
		p.Stdin, p.Stdout, p.Stderr = nil, nil, nil
		t := &stdio{}
		if !detach {
			if err := t.initHostConsole(); err != nil {
				return nil, err
			}
			parent, child, err := utils.NewSockPair("console")
			if err != nil {
				return nil, err
			}
			p.ConsoleSocket = child
			t.postStart = append(t.postStart, parent, child)
			t.consoleC = make(chan error, 1)
			go func() { t.consoleC <- t.recvtty(parent) }()
			return t, nil
		}
		conn, err := net.Dial("unix", sockpath)
		if err != nil {
			return nil, err
		}
		defer func() {
			if retErr != nil {
				conn.Close()
			}
		}()
		t.postStart = append(t.postStart, conn)
		socket, err := conn.(*net.UnixConn).File()
		if err != nil {
			return nil, err
		}
		t.postStart = append(t.postStart, socket)
		p.ConsoleSocket = socket
		return t, nil
	}
	if detach {
		p.Stdin, p.Stdout, p.Stderr = os.Stdin, os.Stdout, os.Stderr
		return &stdio{}, nil
	}
	cfg := c.Config()
	uid, err := cfg.HostRootUID()
	if err != nil {
		return nil, err
	}
	gid, err := cfg.HostRootGID()
	if err != nil {
		return nil, err
	}
	return setupPipes(p, uid, gid)
}

// setupPipes gives the process pipes owned by the container's root and
// copies them to and from our stdio.
func setupPipes(p *libcontainer.Process, uid, gid int) (*stdio, error) {
	i, err := p.InitializeIO(uid, gid)
	if err != nil {
		return nil, err
	}
	t := &stdio{closers: []io.Closer{i.Stdin, i.Stdout, i.Stderr}}
	for _, s := range []any{p.Stdin, p.Stdout, p.Stderr} {
		if c, ok := s.(io.Closer); ok {
			t.postStart = append(t.postStart, c)
		}
	}
	go func() {
		_, _ = io.Copy(i.Stdin, os.Stdin)
		_ = i.Stdin.Close()
	}()
	t.wg.Add(2)
	go t.copyIO(os.Stdout, i.Stdout)
	go t.copyIO(os.Stderr, i.Stderr)
	return t, nil
}

func (t *stdio) copyIO(w io.Writer, r io.ReadCloser) {
	defer t.wg.Done()
	_, _ = io.Copy(w, r)
	_ = r.Close()
}

func (t *stdio) initHostConsole() error {
	for _, s := range []*os.File{os.Stderr, os.Stdout, os.Stdin} {
		c, err := console.ConsoleFromFile(s)
		if err == nil {
			t.hostConsole = c
			return nil
		}
		if !errors.Is(err, console.ErrNotAConsole) {
			return fmt.Errorf("unable to get console: %w", err)
		}
	}
	tty, err := os.Open("/dev/tty")
	if err != nil {
		return err
	}
	c, err := console.ConsoleFromFile(tty)
	if err != nil {
		return fmt.Errorf("unable to get console: %w", err)
	}
	t.hostConsole = c
	return nil
}

// recvtty receives the pty master from the container's init and relays it.
func (t *stdio) recvtty(socket *os.File) (retErr error) {
	f, err := utils.RecvFile(socket) //nolint:staticcheck // the only exported receiver in libcontainer
	if err != nil {
		return err
	}
	cons, err := console.ConsoleFromFile(f)
	if err != nil {
		return err
	}
	if err := console.ClearONLCR(cons.Fd()); err != nil {
		return err
	}
	epoller, err := console.NewEpoller()
	if err != nil {
		return err
	}
	ec, err := epoller.Add(cons)
	if err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			_ = ec.Close()
		}
	}()
	go func() { _ = epoller.Wait() }()
	go func() { _, _ = io.Copy(ec, os.Stdin) }()
	t.wg.Add(1)
	go t.copyIO(os.Stdout, ec)
	if err := t.hostConsole.SetRaw(); err != nil {
		return fmt.Errorf("failed to set the terminal from the stdin: %w", err)
	}
	go func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, os.Interrupt)
		<-ch
		_ = t.hostConsole.Reset()
		os.Exit(0)
	}()
	t.epoller, t.console, t.closers = epoller, ec, []io.Closer{ec}
	return nil
}

func (t *stdio) waitConsole() error {
	if t.consoleC != nil {
		return <-t.consoleC
	}
	return nil
}

// closePostStart closes our copies of what the container now holds.
func (t *stdio) closePostStart() {
	for _, c := range t.postStart {
		_ = c.Close()
	}
	t.postStart = nil
}

func (t *stdio) Close() {
	t.closePostStart()
	if t.console != nil && t.epoller != nil {
		_ = t.console.Shutdown(t.epoller.CloseConsole)
	}
	t.wg.Wait()
	for _, c := range t.closers {
		_ = c.Close()
	}
	if t.hostConsole != nil {
		_ = t.hostConsole.Reset()
	}
}

func (t *stdio) resize() error {
	if t.console == nil || t.hostConsole == nil {
		return nil
	}
	return t.console.ResizeFrom(t.hostConsole)
}
