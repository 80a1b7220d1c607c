package monitorclient_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-cri/berth/monitorclient"
)

// The container's monitor runs an exec: output in the exec's log, the
// exit code in the reply, no process of its own, and the monitor and
// container carry on.
func TestExecIn(t *testing.T) {
	c := newCtr(t, []string{"sleep", "1000"}, nil)
	st := c.start()
	c.run()
	for i := 0; i < 3; i++ { // the same monitor, again and again
		ec := execCfg(t, c, "execin-"+strconv.Itoa(i), "sh", "-c", "echo exec-out; echo exec-err >&2; exit 5")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		code, err := monitorclient.ExecIn(ctx, c.cfg.ControlSocket, ec)
		cancel()
		if err != nil || code != 5 {
			t.Fatalf("ExecIn: %d, %v; want 5", code, err)
		}
		b, _ := os.ReadFile(ec.LogPath)
		recs := records(t, string(b))
		if strings.Join(stream(recs, "stdout"), "|") != "stdout F exec-out" || strings.Join(stream(recs, "stderr"), "|") != "stderr F exec-err" {
			t.Fatalf("exec log %q", recs)
		}
	}
	if state := c.runc("state", c.cfg.ID); !strings.Contains(state, `"running"`) {
		t.Fatalf("container stopped with its exec: %s", state)
	}
	if !isMonitor(st.MonitorPID, c.cfg.ID) {
		t.Fatal("the container's monitor is gone")
	}
	// Nothing of the execs is left under the monitor but the container.
	if kids := childrenOf(st.MonitorPID); len(kids) != 1 {
		t.Fatalf("monitor's children after the execs: %v, want only the container's init", kids)
	}
}

// MaxOutput bounds an exec's log as for an exec session of its own.
func TestExecInMaxOutput(t *testing.T) {
	c := newCtr(t, []string{"sleep", "1000"}, nil)
	c.start()
	c.run()
	ec := execCfg(t, c, "execin-max", "sh", "-c", "seq 1 200000; seq 1 200000 >&2")
	ec.MaxOutput = 1001
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if code, err := monitorclient.ExecIn(ctx, c.cfg.ControlSocket, ec); err != nil || code != 0 {
		t.Fatalf("ExecIn: %d, %v", code, err)
	}
	b, _ := os.ReadFile(ec.LogPath)
	for _, sname := range []string{"stdout", "stderr"} {
		written := 0
		for _, l := range strings.SplitAfter(string(b), "\n") {
			if strings.Contains(l, " "+sname+" ") {
				written += len(l)
			}
		}
		if written > 1001 || written < 1001-60 {
			t.Errorf("%s: wrote %d bytes of records, want at most 1001 (and most of them)", sname, written)
		}
	}
}

// A command the runtime cannot start is the runtime's error, with its
// words; the monitor carries on.
func TestExecInRuntimeError(t *testing.T) {
	c := newCtr(t, []string{"sleep", "1000"}, nil)
	st := c.start()
	c.run()
	ec := execCfg(t, c, "execin-nope", "/no/such/command")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := monitorclient.ExecIn(ctx, c.cfg.ControlSocket, ec)
	var rerr *monitorclient.RuntimeError
	if !errors.As(err, &rerr) || !strings.Contains(rerr.Message, "no such file") {
		t.Fatalf("ExecIn of a missing command: %v; want a RuntimeError saying so", err)
	}
	if !isMonitor(st.MonitorPID, c.cfg.ID) {
		t.Fatal("the container's monitor is gone")
	}
}

// When the caller gives up, the command is killed and reaped before
// ExecIn returns, and the container and its monitor carry on.
func TestExecInKilledOnTimeout(t *testing.T) {
	c := newCtr(t, []string{"sleep", "1000"}, nil)
	st := c.start()
	c.run()
	ec := execCfg(t, c, "execin-kill", "sleep", "1000")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := monitorclient.ExecIn(ctx, c.cfg.ControlSocket, ec)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ExecIn past its deadline: %v", err)
	}
	if kids := childrenOf(st.MonitorPID); len(kids) != 1 {
		t.Fatalf("monitor's children after the killed exec: %v, want only the container's init", kids)
	}
	if state := c.runc("state", c.cfg.ID); !strings.Contains(state, `"running"`) {
		t.Fatalf("container stopped with its exec: %s", state)
	}
}

// An exec still running when the container exits is killed and answered
// before the monitor writes the exit file and goes.
func TestExecInContainerExits(t *testing.T) {
	c := newCtr(t, []string{"sleep", "1000"}, nil)
	c.start()
	c.run()
	ec := execCfg(t, c, "execin-orphan", "sleep", "1000")
	type result struct {
		code int32
		err  error
	}
	got := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		code, err := monitorclient.ExecIn(ctx, c.cfg.ControlSocket, ec)
		got <- result{code, err}
	}()
	waitFor(t, "the exec's pid file", func() bool { _, err := os.Stat(ec.PidFile); return err == nil })
	c.runc("kill", c.cfg.ID, "KILL")
	r := <-got
	if r.err != nil || r.code != 137 {
		t.Fatalf("exec when its container exited: %d, %v; want 137 (killed)", r.code, r.err)
	}
	if e := c.wait(); e.Signal != 9 {
		t.Fatalf("container exit %+v", e)
	}
}

// A monitor that does not know the request (an older one) makes ExecIn
// fail with ErrUnsupported, as does a socket nobody serves: the
// caller then runs the exec under a monitor of its own.
func TestExecInUnsupported(t *testing.T) {
	c := newCtr(t, []string{"sleep", "1000"}, nil)
	ec := execCfg(t, c, "execin-old", "true")
	dir := t.TempDir()
	sock := filepath.Join(dir, "ctl")
	served := serveOldControl(t, sock)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := monitorclient.ExecIn(ctx, sock, ec); !errors.Is(err, monitorclient.ErrUnsupported) {
		t.Fatalf("ExecIn against an old monitor: %v; want ErrUnsupported", err)
	}
	if req := <-served; !strings.HasPrefix(req, "exec\n") {
		t.Fatalf("the old monitor got %q", req)
	}
	if _, err := monitorclient.ExecIn(ctx, filepath.Join(dir, "none"), ec); !errors.Is(err, monitorclient.ErrUnsupported) {
		t.Fatalf("ExecIn without a monitor: %v; want ErrUnsupported", err)
	}
}

// serveOldControl answers one control request at path as monitors before
// execs did (a 256-byte read, "error: unknown request %q") and sends the
// request it read.
func serveOldControl(t *testing.T, path string) <-chan string {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 1); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	out := make(chan string, 1)
	go func() {
		nfd, _, err := unix.Accept(fd)
		if err != nil {
			out <- err.Error()
			return
		}
		defer unix.Close(nfd)
		buf := make([]byte, 256)
		n, err := unix.Read(nfd, buf)
		if err != nil {
			out <- err.Error()
			return
		}
		unix.Write(nfd, []byte("error: unknown request "+strconv.Quote(string(buf[:n]))))
		out <- string(buf[:n])
	}()
	return out
}

// Execs at once in one monitor (a liveness and a readiness probe) each
// get their own command's exit code and output.
func TestExecInConcurrent(t *testing.T) {
	c := newCtr(t, []string{"sleep", "1000"}, nil)
	c.start()
	c.run()
	const n = 8
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			ec := execCfg(t, c, "execin-par-"+strconv.Itoa(i), "sh", "-c", "echo out-$0; exit $0", strconv.Itoa(i))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			code, err := monitorclient.ExecIn(ctx, c.cfg.ControlSocket, ec)
			if err == nil && code != int32(i) {
				err = errors.New("exec " + strconv.Itoa(i) + ": exit code " + strconv.Itoa(int(code)))
			}
			if err == nil {
				b, _ := os.ReadFile(ec.LogPath)
				if recs := stream(records(t, string(b)), "stdout"); len(recs) != 1 || recs[0] != "stdout F out-"+strconv.Itoa(i) {
					err = errors.New("exec " + strconv.Itoa(i) + ": output " + strings.Join(recs, "|"))
				}
			}
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
