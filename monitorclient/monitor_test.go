package monitorclient_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-cri/berth/monitorclient"
)

func TestLogsAndExit(t *testing.T) {
	c := newCtr(t, []string{"sh", "-c", `echo out1; echo err1 >&2; head -c 40000 /dev/zero | tr '\0' a; echo; echo; printf tail; exit 7`}, nil)
	before := time.Now()
	st := c.start()
	if st.ContainerPID <= 0 || st.MonitorPID <= 0 {
		t.Fatalf("Started = %+v", st)
	}
	if !isMonitor(st.MonitorPID, c.cfg.ID) {
		t.Fatalf("pid %d is not a running monitor", st.MonitorPID)
	}
	c.run()
	e := c.wait()
	after := time.Now()
	if e.ExitCode != 7 || e.Signal != 0 || e.OOMKilled || e.Pid != st.ContainerPID {
		t.Fatalf("exit = %+v, want code 7 of pid %d", e, st.ContainerPID)
	}
	if e.ExitedAt.Before(before) || e.ExitedAt.After(after) {
		t.Fatalf("exited at %v, not between %v and %v", e.ExitedAt, before, after)
	}

	recs := records(t, c.log())
	long := strings.Repeat("a", monitorclient.DefaultMaxLineSize)
	want := []string{"stdout F out1", "stdout P " + long, "stdout P " + long, "stdout F " + strings.Repeat("a", 40000-2*monitorclient.DefaultMaxLineSize), "stdout F ", "stdout P tail"}
	if got := stream(recs, "stdout"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("stdout records:\n%.300q\nwant\n%.300q", got, want)
	}
	if got := stream(recs, "stderr"); strings.Join(got, "|") != "stderr F err1" {
		t.Errorf("stderr records: %q", got)
	}
	waitFor(t, "monitor exit", func() bool { return !isMonitor(st.MonitorPID, c.cfg.ID) })
	for _, p := range []string{c.cfg.AttachSocket, c.cfg.ControlSocket} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind: %v", p, err)
		}
	}
}

func TestMaxLineSize(t *testing.T) {
	c := newCtr(t, []string{"sh", "-c", `echo 0123456789`}, nil)
	c.cfg.MaxLineSize = 4
	c.start()
	c.run()
	c.wait()
	got := strings.Join(records(t, c.log()), "|")
	if got != "stdout P 0123|stdout P 4567|stdout F 89" {
		t.Fatalf("records %q", got)
	}
}

func TestRuntimeErrorSurfaces(t *testing.T) {
	c := newCtr(t, []string{"/nonexistent-binary"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := monitorclient.Start(ctx, monitorBin, c.cfg)
	if err == nil {
		c.started = st
		t.Fatal("Start succeeded with a missing binary")
	}
	var rerr *monitorclient.RuntimeError
	if !errors.As(err, &rerr) {
		t.Fatalf("error %v is not a RuntimeError", err)
	}
	if !strings.Contains(err.Error(), "/nonexistent-binary") || strings.Contains(err.Error(), "exit status") {
		t.Fatalf("error does not carry runc's message: %v", err)
	}
	t.Logf("runtime error: %v", err)
	if out, err := exec.Command(runcPath, "--root", c.cfg.RuntimeRoot, "state", c.cfg.ID).CombinedOutput(); err == nil {
		t.Fatalf("container exists after a failed create: %s", out)
	}
	if _, err := os.Stat(c.cfg.ExitFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("exit file written for a container that never was: %v", err)
	}
}

func TestStartCancelled(t *testing.T) {
	c := newCtr(t, []string{"true"}, nil)
	// A runtime that never finishes create, and notes the delete Start
	// must run after killing it.
	slow := filepath.Join(c.dir, "slow-runtime")
	deleted := filepath.Join(c.dir, "deleted")
	script := "#!/bin/sh\ncase \"$*\" in\n*create*) exec sleep 1000 ;;\n*delete*--force*) echo \"$*\" > " + deleted + " ;;\nesac\n"
	if err := os.WriteFile(slow, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	c.cfg.RuntimePath = slow
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Cancel once the fake runtime runs.
		waitFor(t, "slow runtime", func() bool { return findProc(c.cfg.ID) > 0 })
		cancel()
	}()
	_, err := monitorclient.Start(ctx, monitorBin, c.cfg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Start = %v, want context.Canceled", err)
	}
	if pid := findProc(c.cfg.ID); pid > 0 {
		t.Fatalf("process %d (%s) left after a cancelled Start", pid, cmdline(pid))
	}
	if b, err := os.ReadFile(deleted); err != nil || !strings.Contains(string(b), c.cfg.ID) {
		t.Fatalf("no runtime delete after a cancelled Start: %q, %v", b, err)
	}
}

// findProc finds a live process whose command line mentions s.
func findProc(s string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if strings.Contains(cmdline(pid), s) && procState(pid) != "Z" {
			return pid
		}
	}
	return 0
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.ReplaceAll(string(b), "\x00", " ")
}

func TestReopenLogLosesNothing(t *testing.T) {
	// A run dir deep enough that socket paths pass sun_path's 108 bytes.
	c := newCtr(t, []string{"sh", "-c", `i=0; while [ ! -e /stop ]; do echo $i; i=$((i+1)); done; echo $i; echo end`}, nil)
	deep := filepath.Join(c.dir, strings.Repeat("d", 60), strings.Repeat("e", 60))
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	c.cfg.AttachSocket = filepath.Join(deep, "attach")
	c.cfg.ControlSocket = filepath.Join(deep, "control")
	st := c.start()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if pid, err := monitorclient.Ping(ctx, c.cfg.ControlSocket); err != nil || pid != st.MonitorPID {
		t.Fatalf("Ping = %d, %v; want %d", pid, err, st.MonitorPID)
	}
	c.run()
	waitFor(t, "first lines", func() bool { b, _ := os.ReadFile(c.cfg.LogPath); return len(b) > 4096 })
	rotated := c.cfg.LogPath + ".1"
	// kubelet's rotation: rename, then ReopenContainerLog.
	if err := os.Rename(c.cfg.LogPath, rotated); err != nil {
		t.Fatal(err)
	}
	if err := monitorclient.ReopenLog(ctx, c.cfg.ControlSocket); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "lines in the new file", func() bool { b, _ := os.ReadFile(c.cfg.LogPath); return len(b) > 4096 })
	if err := os.WriteFile(filepath.Join(c.cfg.Bundle, "rootfs", "stop"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if e := c.wait(); e.ExitCode != 0 {
		t.Fatalf("exit %+v", e)
	}
	old, err := os.ReadFile(rotated)
	if err != nil {
		t.Fatal(err)
	}
	oldRecs, newRecs := records(t, string(old)), records(t, c.log())
	if len(oldRecs) == 0 || len(newRecs) < 2 {
		t.Fatalf("rotation did not split the log: %d and %d records", len(oldRecs), len(newRecs))
	}
	all := append(oldRecs, newRecs...)
	if all[len(all)-1] != "stdout F end" {
		t.Fatalf("last record %q", all[len(all)-1])
	}
	for i, r := range all[:len(all)-1] {
		if r != "stdout F "+strconv.Itoa(i) {
			t.Fatalf("record %d is %q: a line was lost or split at the rotation (old file has %d)", i, r, len(oldRecs))
		}
	}
	t.Logf("%d lines before the reopen, %d after", len(oldRecs), len(newRecs))
}

func TestOOMKilled(t *testing.T) {
	limit := int64(32 << 20)
	c := newCtr(t, []string{"dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"}, func(s *specs.Spec) {
		mem := &specs.LinuxMemory{Limit: &limit}
		if _, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"); err == nil {
			mem.Swap = &limit // no swap to escape into
		}
		s.Linux.Resources = &specs.LinuxResources{Memory: mem}
	})
	c.start()
	c.run()
	e := c.wait()
	if !e.OOMKilled || e.Signal != int(syscall.SIGKILL) || e.ExitCode != 137 {
		t.Fatalf("exit %+v, want OOM-killed by SIGKILL", e)
	}
}

func TestNotOOMKilledWhenKilled(t *testing.T) {
	c := newCtr(t, []string{"sleep", "1000"}, nil)
	c.start()
	c.run()
	c.runc("kill", c.cfg.ID, "KILL")
	e := c.wait()
	if e.OOMKilled || e.ExitCode != 137 || e.Signal != 9 {
		t.Fatalf("exit %+v, want a plain SIGKILL", e)
	}
}

func TestDeletedBeforeStart(t *testing.T) {
	c := newCtr(t, []string{"sleep", "1000"}, nil)
	st := c.start()
	c.runc("delete", "--force", c.cfg.ID)
	e := c.wait()
	if e.Signal != int(syscall.SIGKILL) || e.Pid != st.ContainerPID {
		t.Fatalf("exit %+v, want the never-started init killed", e)
	}
	waitFor(t, "monitor exit", func() bool { return !isMonitor(st.MonitorPID, c.cfg.ID) })
}

func TestSurvivesCallerDeath(t *testing.T) {
	// A pid 1 gets no default signal actions: trap TERM.
	c := newCtr(t, []string{"sh", "-c", `trap "exit 3" TERM; sleep 1000 & wait`}, nil)
	in, _ := json.Marshal(map[string]any{"Binary": monitorBin, "Config": c.cfg})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(in))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper (a berthd that starts a monitor and exits): %v: %s", err, stderr.String())
	}
	var st monitorclient.Started
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("helper output %q: %v", out, err)
	}
	c.started = &st
	// The helper is gone (reaped by cmd.Wait); its monitor and container
	// are not.
	if !isMonitor(st.MonitorPID, c.cfg.ID) {
		t.Fatalf("monitor %d died with its caller", st.MonitorPID)
	}
	if sid, _ := unix.Getsid(st.MonitorPID); sid != st.MonitorPID {
		t.Fatalf("monitor session %d, want its own (%d)", sid, st.MonitorPID)
	}
	c.run()
	if state := c.runc("state", c.cfg.ID); !strings.Contains(state, `"running"`) {
		t.Fatalf("container not running: %s", state)
	}
	if _, ppid := procStat(st.ContainerPID); ppid != st.MonitorPID {
		t.Fatalf("container init's parent is %d, want the monitor %d", ppid, st.MonitorPID)
	}
	// A TERM sent before sh set its trap is ignored (pid 1): wait for it.
	waitFor(t, "the shell to trap TERM", func() bool { return catches(st.ContainerPID, syscall.SIGTERM) })
	c.runc("kill", c.cfg.ID, "TERM")
	if e := c.wait(); e.Signal != 0 || e.ExitCode != 3 {
		t.Fatalf("exit %+v, want code 3 from the TERM trap", e)
	}
}

func TestReapsOrphans(t *testing.T) {
	// In the host pid namespace the container's orphans are reparented to
	// the nearest subreaper: the monitor.
	c := newCtr(t, []string{"sh", "-c", `for i in 1 2 3; do (sleep 1000 &); done; echo spawned; exec sleep 1000`}, func(s *specs.Spec) {
		var ns []specs.LinuxNamespace
		for _, n := range s.Linux.Namespaces {
			if n.Type != specs.PIDNamespace {
				ns = append(ns, n)
			}
		}
		s.Linux.Namespaces = ns
	})
	st := c.start()
	var orphans []int
	t.Cleanup(func() {
		for _, pid := range orphans {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	c.run()
	waitFor(t, "orphans adopted by the monitor", func() bool {
		orphans = orphans[:0]
		for pid, desc := range childrenOf(st.MonitorPID) {
			if pid != st.ContainerPID && strings.HasSuffix(desc, " sleep") {
				orphans = append(orphans, pid)
			}
		}
		return len(orphans) == 3
	})
	for _, pid := range orphans {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	waitFor(t, "orphans reaped", func() bool {
		for _, pid := range orphans {
			if _, ppid := procStat(pid); ppid == st.MonitorPID {
				return false // still there, a zombie or dying
			}
		}
		return true
	})
	c.runc("kill", c.cfg.ID, "KILL")
	if e := c.wait(); e.Signal != 9 {
		t.Fatalf("exit %+v", e)
	}
}

func TestAttachStdin(t *testing.T) {
	c := newCtr(t, []string{"sh", "-c", `cat; echo cat-done >&2`}, nil)
	c.cfg.Stdin, c.cfg.StdinOnce = true, true
	c.start()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	inR, inW := io.Pipe()
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() { done <- monitorclient.Attach(ctx, c.cfg.AttachSocket, inR, &out, &errOut, nil) }()
	c.run()
	io.WriteString(inW, "hello\n")
	waitFor(t, "echo through attach", func() bool { return out.String() == "hello\n" })
	io.WriteString(inW, "world\n")
	inW.Close() // StdinOnce: the container's stdin closes, cat ends
	if err := <-done; err != nil {
		t.Fatalf("Attach: %v", err)
	}
	if out.String() != "hello\nworld\n" || errOut.String() != "cat-done\n" {
		t.Fatalf("attach stdout %q, stderr %q", out.String(), errOut.String())
	}
	if e := c.wait(); e.ExitCode != 0 {
		t.Fatalf("exit %+v", e)
	}
	// Two pipes: order is kept within a stream, not across them.
	recs := records(t, c.log())
	if strings.Join(stream(recs, "stdout"), "|") != "stdout F hello|stdout F world" || strings.Join(stream(recs, "stderr"), "|") != "stderr F cat-done" {
		t.Fatalf("log %q", recs)
	}
}

func TestAttachWithoutStdin(t *testing.T) {
	// stdin is /dev/null: cat ends at once; its input from attach is ignored.
	c := newCtr(t, []string{"sh", "-c", `cat; echo done`}, nil)
	c.start()
	c.run()
	if e := c.wait(); e.ExitCode != 0 {
		t.Fatalf("exit %+v", e)
	}
	if got := strings.Join(records(t, c.log()), "|"); got != "stdout F done" {
		t.Fatalf("log %q", got)
	}
}

func TestTerminal(t *testing.T) {
	c := newCtr(t, []string{"sh", "-c", `read x; stty size; echo "got:$x"`}, func(s *specs.Spec) { s.Process.Terminal = true })
	c.cfg.Terminal, c.cfg.Stdin = true, true
	c.start()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resize := make(chan monitorclient.Size, 1)
	resize <- monitorclient.Size{Width: 100, Height: 40}
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- monitorclient.Attach(ctx, c.cfg.AttachSocket, strings.NewReader("abc\n"), &out, nil, resize)
	}()
	c.run()
	if err := <-done; err != nil {
		t.Fatalf("Attach: %v", err)
	}
	// The tty echoes the input and ends lines with \r\n.
	if !strings.Contains(out.String(), "40 100\r\n") || !strings.Contains(out.String(), "got:abc\r\n") {
		t.Fatalf("tty output %q", out.String())
	}
	if e := c.wait(); e.ExitCode != 0 {
		t.Fatalf("exit %+v", e)
	}
	log := c.log()
	if !strings.Contains(log, " stdout F got:abc\r\n") || strings.Contains(log, " stderr ") {
		t.Fatalf("tty log %q", log)
	}
}

func TestExecSession(t *testing.T) {
	c := newCtr(t, []string{"sleep", "1000"}, nil)
	c.start()
	c.run()
	ec := execCfg(t, c, "exec", []string{"sh", "-c", "echo exec-out; echo exec-err >&2; exit 5"}...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := monitorclient.Start(ctx, monitorBin, ec)
	if err != nil {
		t.Fatal(err)
	}
	e, err := monitorclient.WaitExit(ctx, ec.ExitFile, st.MonitorPID, nil)
	if err != nil || e.ExitCode != 5 || e.Pid != st.ContainerPID {
		t.Fatalf("exec exit %+v, %v", e, err)
	}
	b, _ := os.ReadFile(ec.LogPath)
	recs := records(t, string(b))
	if strings.Join(stream(recs, "stdout"), "|") != "stdout F exec-out" || strings.Join(stream(recs, "stderr"), "|") != "stderr F exec-err" {
		t.Fatalf("exec log %q", recs)
	}
	if state := c.runc("state", c.cfg.ID); !strings.Contains(state, `"running"`) {
		t.Fatalf("container stopped with its exec: %s", state)
	}
}

// An exec session with MaxOutput writes only that much of each stream to
// its log, however much the command prints and however it prints it: a
// newline is one byte of output but a 41-byte record.
func TestExecSessionMaxOutput(t *testing.T) {
	c := newCtr(t, []string{"sleep", "1000"}, nil)
	c.start()
	c.run()
	for name, script := range map[string]string{
		"lines":    "seq 1 200000; seq 1 200000 >&2",
		"newlines": "seq 1 200000 | tr -dc '\\n'; seq 1 200000 | tr -dc '\\n' >&2",
	} {
		t.Run(name, func(t *testing.T) {
			ec := execCfg(t, c, "exec-"+name, "sh", "-c", script)
			ec.MaxOutput = 1001
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			st, err := monitorclient.Start(ctx, monitorBin, ec)
			if err != nil {
				t.Fatal(err)
			}
			if e, err := monitorclient.WaitExit(ctx, ec.ExitFile, st.MonitorPID, nil); err != nil || e.ExitCode != 0 {
				t.Fatalf("exec exit %+v, %v", e, err)
			}
			b, _ := os.ReadFile(ec.LogPath)
			recs := records(t, string(b))
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
			if len(recs) == 0 {
				t.Fatal("nothing logged")
			}
		})
	}
}

func TestWaitExitMonitorGone(t *testing.T) {
	c := newCtr(t, []string{"sleep", "1000"}, nil)
	st := c.start()
	syscall.Kill(st.MonitorPID, syscall.SIGKILL)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := monitorclient.WaitExit(ctx, c.cfg.ExitFile, st.MonitorPID, nil); !errors.Is(err, monitorclient.ErrMonitorGone) {
		t.Fatalf("WaitExit after the monitor was killed: %v, want ErrMonitorGone", err)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
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

func TestTerminalStdinOnce(t *testing.T) {
	// A tty cannot be half-closed: the end of a StdinOnce session's input
	// reaches the container as ^D, and cat ends.
	c := newCtr(t, []string{"sh", "-c", `cat; echo cat-ended`}, func(s *specs.Spec) { s.Process.Terminal = true })
	c.cfg.Terminal, c.cfg.Stdin, c.cfg.StdinOnce = true, true, true
	c.start()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- monitorclient.Attach(ctx, c.cfg.AttachSocket, strings.NewReader("line\n"), &out, nil, nil)
	}()
	c.run()
	if err := <-done; err != nil {
		t.Fatalf("Attach: %v", err)
	}
	if e := c.wait(); e.ExitCode != 0 {
		t.Fatalf("exit %+v", e)
	}
	if !strings.Contains(out.String(), "cat-ended") {
		t.Fatalf("tty output %q", out.String())
	}
}

// KillExec ends an exec session's command through its monitor; after the
// session is over it is a no-op, never a kill of a reused pid.
func TestKillExecThroughMonitor(t *testing.T) {
	c := newCtr(t, []string{"sleep", "1000"}, nil)
	c.start()
	c.run()
	ec := execCfg(t, c, "exec-kill", []string{"sleep", "1000"}...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := monitorclient.Start(ctx, monitorBin, ec)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.KillExec(); err != nil {
		t.Fatal(err)
	}
	e, err := monitorclient.WaitExit(ctx, ec.ExitFile, st.MonitorPID, nil)
	if err != nil || e.Signal != int(syscall.SIGKILL) {
		t.Fatalf("exec exit %+v, %v: want killed by SIGKILL", e, err)
	}
	if state := c.runc("state", c.cfg.ID); !strings.Contains(state, `"running"`) {
		t.Fatalf("container stopped with its exec: %s", state)
	}
	// The monitor is gone (and reaped): no signal goes anywhere.
	waitGone(t, st.MonitorPID)
	if err := st.KillExec(); err != nil {
		t.Fatalf("KillExec after the end: %v", err)
	}
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still there", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
