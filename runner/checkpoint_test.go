package runner

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func criuInvocation(t *testing.T, cmd *command, global, args []string) *invocation {
	t.Helper()
	g := newFlagSet(true, globalFlags...)
	if err := g.parse(append(global, cmd.name)); err != nil {
		t.Fatal(err)
	}
	fs := newFlagSet(false, cmd.flags...)
	if err := fs.parse(args); err != nil {
		t.Fatal(err)
	}
	return &invocation{global: g, flags: fs, args: fs.args, command: cmd}
}

func TestCheckpointOptionsAsRunc(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "parent"), 0o700); err != nil {
		t.Fatal(err)
	}
	inv := criuInvocation(t, checkpointCommand, nil, []string{"--image-path", dir, "--leave-running", "--tcp-established",
		"--parent-path", "parent", "--page-server", "127.0.0.1:2222", "--manage-cgroups-mode", "soft", "ctr"})
	o, err := criuOptions(inv, true)
	if err != nil {
		t.Fatal(err)
	}
	if o.ImagesDirectory != dir || !o.LeaveRunning || !o.TcpEstablished || o.ParentImage != "parent" ||
		o.PageServer.Address != "127.0.0.1" || o.PageServer.Port != 2222 || o.ManageCgroupsMode != "soft" ||
		o.StatusFd != -1 || o.EmptyNs != unix.CLONE_NEWNET {
		t.Fatalf("options %+v", o)
	}
	for _, bad := range [][]string{
		{"--image-path", dir, "--parent-path", "/abs", "ctr"},
		{"--image-path", dir, "--parent-path", "missing", "ctr"},
		{"--image-path", dir, "--page-server", "nohost", "ctr"},
		{"--image-path", dir, "--empty-ns", "pid", "ctr"},
	} {
		if _, err := criuOptions(criuInvocation(t, checkpointCommand, nil, bad), true); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}

func TestUseCriuPutsItsDirectoryFirstInPath(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "criu")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", "/usr/bin")
	if err := useCriu(criuInvocation(t, checkpointCommand, []string{"--criu", bin}, []string{"ctr"})); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(os.Getenv("PATH"), dir+":") {
		t.Fatalf("PATH %q", os.Getenv("PATH"))
	}
	other := filepath.Join(dir, "criu-4")
	if err := os.WriteFile(other, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{other, filepath.Join(dir, "none", "criu"), dir + "/"} {
		if err := useCriu(criuInvocation(t, checkpointCommand, []string{"--criu", bad}, []string{"ctr"})); err == nil {
			t.Errorf("--criu %s: no error", bad)
		}
	}
}
