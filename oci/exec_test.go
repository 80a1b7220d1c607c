package oci

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/errdefs"
)

func TestFitOutput(t *testing.T) {
	a := func(n int) []byte { return bytes.Repeat([]byte("o"), n) }
	e := func(n int) []byte { return bytes.Repeat([]byte("e"), n) }
	for _, tc := range []struct {
		out, err, max, wantOut, wantErr int
	}{
		{10, 10, 100, 10, 10},
		{100, 100, 100, 50, 50},
		{10, 500, 100, 10, 90},
		{500, 10, 100, 90, 10},
		{0, 500, 100, 0, 100},
		{101, 0, 100, 100, 0},
	} {
		o, r := fitOutput(a(tc.out), e(tc.err), tc.max)
		if len(o) != tc.wantOut || len(r) != tc.wantErr {
			t.Errorf("fitOutput(%d, %d, %d) = %d, %d; want %d, %d", tc.out, tc.err, tc.max, len(o), len(r), tc.wantOut, tc.wantErr)
		}
	}
}

// The exec log is read back into output without its record overhead.
func TestReadExecOutput(t *testing.T) {
	path := filepath.Join(t.TempDir(), "exec.log")
	log := strings.Join([]string{
		"2016-10-06T00:17:09.669794202Z stdout F hello",
		"2016-10-06T00:17:09.669794202Z stderr P par",
		"2016-10-06T00:17:09.669794202Z stderr F tial",
		"2016-10-06T00:17:09.669794202Z stdout F ",
		"2016-10-06T00:17:09.669794202Z stdout P cut",
	}, "\n") + "\n"
	if err := os.WriteFile(path, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := readExecOutput(path, 1<<20)
	if err != nil || string(out) != "hello\n\ncut" || string(errOut) != "partial\n" {
		t.Fatalf("got %q %q %v", out, errOut, err)
	}
}

// ExecSync runs the command under the container's own monitor: while it
// runs it is that monitor's child, and no other monitor is spawned; its
// timeout kills it there.
func TestExecSyncThroughContainerMonitor(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	c := e.create(t, &runtimeapi.ContainerConfig{Command: []string{"sleep", "60"}})
	must(t, e.m.Start(ctx, c))
	mon := c.Record().MonitorPID
	done := make(chan error, 1)
	go func() {
		_, err := e.m.ExecSync(ctx, c, []string{"sleep", "30"}, 3*time.Second)
		done <- err
	}()
	deadline := time.Now().Add(20 * time.Second)
	for len(childrenOf(mon)) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the exec never ran under the container's monitor (children %v)", childrenOf(mon))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := <-done; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("exec past its timeout: %v", err)
	}
	if kids := childrenOf(mon); len(kids) != 1 {
		t.Fatalf("the monitor's children after the timed-out exec: %v, want the container's init only", kids)
	}
	res, err := e.m.ExecSync(ctx, c, []string{"sh", "-c", "echo out; echo err >&2; exit 3"}, 0)
	must(t, err)
	if string(res.Stdout) != "out\n" || string(res.Stderr) != "err\n" || res.ExitCode != 3 {
		t.Errorf("exec = %q %q %d", res.Stdout, res.Stderr, res.ExitCode)
	}
	if _, err := e.m.ExecSync(ctx, c, []string{"/no/such/command"}, 0); !errdefs.Is(err, errdefs.KindFailedPrecondition) {
		t.Errorf("exec of a missing command: %v, want FailedPrecondition", err)
	}
}

// A container whose monitor predates execs on the control socket (it
// answers "unknown request") still runs ExecSync, under a monitor spawned
// for the exec: output, exit code, refusals and timeouts as ever.
func TestExecSyncFallsBackForOldMonitor(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	c := e.create(t, &runtimeapi.ContainerConfig{Command: []string{"sleep", "60"}})
	must(t, e.m.Start(ctx, c))
	// The old monitor's control socket stands where the real one was.
	ctl := c.paths.control()
	must(t, os.Rename(ctl, ctl+".real"))
	t.Cleanup(func() { os.Remove(ctl); os.Rename(ctl+".real", ctl) })
	reqs := serveOldControl(t, ctl)

	res, err := e.m.ExecSync(ctx, c, []string{"sh", "-c", "echo out; echo err >&2; exit 3"}, 0)
	must(t, err)
	if string(res.Stdout) != "out\n" || string(res.Stderr) != "err\n" || res.ExitCode != 3 {
		t.Errorf("exec = %q %q %d", res.Stdout, res.Stderr, res.ExitCode)
	}
	if req := <-reqs; !strings.HasPrefix(req, "exec\n") {
		t.Fatalf("the old monitor was asked %q", req)
	}
	if _, err := e.m.ExecSync(ctx, c, []string{"/no/such/command"}, 0); !errdefs.Is(err, errdefs.KindFailedPrecondition) {
		t.Errorf("exec of a missing command: %v, want FailedPrecondition", err)
	}
	<-reqs
	_, err = e.m.ExecSync(ctx, c, []string{"sleep", "30"}, time.Second)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("exec past its timeout: %v", err)
	}
	<-reqs
	if kids := childrenOf(c.Record().MonitorPID); len(kids) != 1 {
		t.Errorf("the container's monitor has children %v: the execs ran there", kids)
	}
}

// serveOldControl answers control requests at path as monitors before
// execs did (one 256-byte read, "error: unknown request %q") and sends
// each request it read.
func serveOldControl(t *testing.T, path string) <-chan string {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	must(t, err)
	must(t, unix.Bind(fd, &unix.SockaddrUnix{Name: path}))
	must(t, unix.Listen(fd, 8))
	out := make(chan string, 16)
	t.Cleanup(func() { unix.Shutdown(fd, unix.SHUT_RDWR); unix.Close(fd) })
	go func() {
		for {
			nfd, _, err := unix.Accept(fd)
			if err != nil {
				return
			}
			buf := make([]byte, 256)
			n, err := unix.Read(nfd, buf)
			if err == nil {
				unix.Write(nfd, []byte("error: unknown request "+strconv.Quote(string(buf[:n]))))
				out <- string(buf[:n])
			}
			unix.Close(nfd)
		}
	}()
	return out
}

// childrenOf lists the processes whose parent is ppid.
func childrenOf(ppid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(b), ')')
		if f := strings.Fields(string(b[i+1:])); i > 0 && len(f) > 1 && f[1] == strconv.Itoa(ppid) {
			out = append(out, pid)
		}
	}
	return out
}
