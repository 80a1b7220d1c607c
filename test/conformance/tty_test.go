package conformance

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// consoleSocket listens where the runtime sends the pty master (SCM_RIGHTS)
// and returns its path and a channel with the master.
func consoleSocket(t *testing.T) (string, <-chan *os.File) {
	t.Helper()
	dir, err := os.MkdirTemp(workDir, "console-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *os.File, 1)
	go func() {
		defer l.Close()
		conn, err := l.AcceptUnix()
		if err != nil {
			return
		}
		defer conn.Close()
		oob := make([]byte, unix.CmsgSpace(4))
		buf := make([]byte, 4096)
		_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			return
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			return
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			return
		}
		ch <- os.NewFile(uintptr(fds[0]), "pty-master")
	}()
	return path, ch
}

func readAll(t *testing.T, f *os.File, until time.Duration) string {
	t.Helper()
	var buf bytes.Buffer
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(&buf, f) // EIO once the last slave fd is closed
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(until):
		t.Errorf("the pty did not close within %v", until)
	}
	return buf.String()
}

func TestTerminal(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *ociRuntime) {
		c := newContainer(t, rt)
		sock, masters := consoleSocket(t)
		c.spec.Process.Terminal = true
		c.spec.Process.Args = []string{"sh", "-c", "tty; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-ttys; stat -c '%t:%T' /dev/console; ls /dev/pts"}
		c.create("--console-socket", sock)
		var master *os.File
		select {
		case master = <-masters:
		case <-time.After(10 * time.Second):
			t.Fatal("no pty master received on the console socket")
		}
		defer master.Close()
		c.start()
		out := strings.ReplaceAll(readAll(t, master, 10*time.Second), "\r", "")
		if code := c.wait(10 * time.Second); code != 0 {
			t.Fatalf("exit %d: %q", code, out)
		}
		for _, want := range []string{"/dev/pts/0\n", "all-ttys\n", "88:0\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("want %q in %q", want, out)
			}
		}
	})
}

func TestExecTerminal(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *ociRuntime) {
		c := newContainer(t, rt)
		c.startSleeping()
		sock, masters := consoleSocket(t)
		r := c.execDetached([]string{"--tty", "--console-socket", sock}, "sh", "-c", "tty; echo done")
		if r.code != 0 {
			t.Fatalf("exec: %s", r)
		}
		var master *os.File
		select {
		case master = <-masters:
		case <-time.After(10 * time.Second):
			t.Fatal("no pty master received")
		}
		defer master.Close()
		out := strings.ReplaceAll(readAll(t, master, 10*time.Second), "\r", "")
		if !strings.Contains(out, "/dev/pts/") || !strings.Contains(out, "done") {
			t.Fatalf("exec tty output %q", out)
		}
	})
}
