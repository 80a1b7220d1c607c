package monitorclient

import (
	"bytes"
	"context"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/berth-cri/berth/monitor"
)

// A monitor that hangs up with the client's input unread makes the
// kernel report ECONNRESET before the output packets still queued for the
// client: attach must deliver those, as they are the container's last
// words (a shell's answer to what was typed just before it exited).
func TestAttachDeliversOutputQueuedBeforeReset(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	client, monitorEnd := fds[0], fds[1]
	for _, p := range []string{"got typed", " on a tty\n"} {
		if _, err := syscall.Write(monitorEnd, append([]byte{monitor.AttachStdout}, p...)); err != nil {
			t.Fatal(err)
		}
	}
	// Input the monitor never reads (a stdin close, say), then its hangup.
	if _, err := syscall.Write(client, []byte{monitor.AttachStdinClose}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Close(monitorEnd); err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(client), "attach")
	fc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()
	var stdout, stderr bytes.Buffer
	if err := attachOn(context.Background(), fc.(*net.UnixConn), nil, &stdout, &stderr, nil); err != nil {
		t.Fatalf("attach: %v", err)
	}
	if got, want := stdout.String(), "got typed on a tty\n"; got != want {
		t.Errorf("stdout %q, want %q", got, want)
	}
}
