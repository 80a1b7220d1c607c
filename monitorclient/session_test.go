package monitorclient_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-cri/berth/monitorclient"
)

// execAttachedCfg is an exec session config for args in c, its output
// to the attached client only (no log).
func execAttachedCfg(t *testing.T, c *ctr, args ...string) monitorclient.Config {
	t.Helper()
	ec := execCfg(t, c, "exec", args...)
	ec.LogPath = ""
	return ec
}

// execCfg is an exec session config for args in c, its files under
// c.dir/name and its output logged to exec.log there.
func execCfg(t testing.TB, c *ctr, name string, args ...string) monitorclient.Config {
	t.Helper()
	proc := specs.Process{Args: args, Cwd: "/", Env: []string{"PATH=/bin"}}
	b, _ := json.Marshal(proc)
	run := filepath.Join(c.dir, name)
	os.MkdirAll(run, 0o755)
	procFile := filepath.Join(run, "process.json")
	os.WriteFile(procFile, b, 0o644)
	ec := c.cfg
	ec.ExecProcess = procFile
	ec.PidFile = filepath.Join(run, "pid")
	ec.ExitFile = filepath.Join(run, "exit")
	ec.LogPath = filepath.Join(run, "exec.log")
	ec.AttachSocket, ec.ControlSocket = "", ""
	ec.MonitorLogPath = filepath.Join(run, "monitor.log")
	return ec
}

// slowWriter takes its time, so the command must wait for the client.
type slowWriter struct{ bytes.Buffer }

func (w *slowWriter) Write(p []byte) (int, error) {
	time.Sleep(2 * time.Millisecond)
	return w.Buffer.Write(p)
}

// A session's client gets every byte from the first, however slow it is,
// with stdin and the exit code.
func TestExecAttachedDeliversAll(t *testing.T) {
	c := newCtr(t, []string{"sleep", "1000"}, nil)
	c.start()
	c.run()
	ec := execAttachedCfg(t, c, "sh", "-c", "read x; echo got-$x; seq 1 1000000; echo to-stderr >&2; exit 4")
	ec.Stdin, ec.StdinOnce = true, true
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, sess, err := monitorclient.StartAttached(ctx, monitorBin, ec)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	var out slowWriter
	var errOut bytes.Buffer
	if err := sess.Stream(ctx, strings.NewReader("hello\n"), &out, &errOut, nil); err != nil {
		t.Fatalf("Stream: %v", err)
	}
	var want strings.Builder
	want.WriteString("got-hello\n")
	for i := 1; i <= 1000000; i++ {
		fmt.Fprintf(&want, "%d\n", i)
	}
	if out.String() != want.String() || errOut.String() != "to-stderr\n" {
		t.Errorf("stdout: %d bytes (want %d), stderr %q", out.Len(), want.Len(), errOut.String())
	}
	if e, err := monitorclient.WaitExit(ctx, ec.ExitFile, st.MonitorPID, nil); err != nil || e.ExitCode != 4 {
		t.Errorf("exit %+v, %v; want code 4", e, err)
	}
}

// A client that hangs up takes the command with it.
func TestExecAttachedHangupKills(t *testing.T) {
	c := newCtr(t, []string{"sleep", "1000"}, nil)
	c.start()
	c.run()
	ec := execAttachedCfg(t, c, "sleep", "1000")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, sess, err := monitorclient.StartAttached(ctx, monitorBin, ec)
	if err != nil {
		t.Fatal(err)
	}
	sess.Close()
	e, err := monitorclient.WaitExit(ctx, ec.ExitFile, st.MonitorPID, nil)
	if err != nil || e.Signal != 9 {
		t.Fatalf("exit %+v, %v; want killed by signal 9", e, err)
	}
	if state := c.runc("state", c.cfg.ID); !strings.Contains(state, `"running"`) {
		t.Fatalf("container stopped with its exec: %s", state)
	}
}
