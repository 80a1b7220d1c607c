package oci

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/berth-cri/berth/errdefs"
)

func TestCriuErrorsKeepsTheReasons(t *testing.T) {
	log := filepath.Join(t.TempDir(), "dump.log")
	text := `(00.028310) files stat: fs/nr_open 1048576
(00.048002) Error (criu/util.c:1533): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted
(00.137231) Error (criu/files-reg.c:1790): Can't lookup mount=27 for fd=1 path=/tmp/out.log
(00.137242) Error (criu/cr-dump.c:1681): Dump files (pid: 19624) failed with -1
(00.137300) Error (criu/files-reg.c:1790): Can't lookup mount=27 for fd=1 path=/tmp/out.log
(00.210738) Error (criu/cr-dump.c:2111): Dumping FAILED.
`
	if err := os.WriteFile(log, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	want := []string{"Can't lookup mount=27 for fd=1 path=/tmp/out.log", "Dump files (pid: 19624) failed with -1"}
	if got := criuErrors(log); !reflect.DeepEqual(got, want) {
		t.Errorf("criuErrors = %q, want %q", got, want)
	}
	if got := criuErrors(filepath.Join(t.TempDir(), "none")); got != nil {
		t.Errorf("no log: %q", got)
	}
}

func TestCheckArchiveLocation(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "old.tar")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(file, filepath.Join(dir, "link.tar")); err != nil {
		t.Fatal(err)
	}
	for _, ok := range []string{filepath.Join(dir, "new.tar"), file} {
		if err := checkArchiveLocation(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "rel.tar", filepath.Join(dir, "none", "x.tar"), dir, filepath.Join(dir, "link.tar"), file + "/x.tar"} {
		if err := checkArchiveLocation(bad); !errdefs.IsInvalid(err) {
			t.Errorf("%q: %v, want invalid", bad, err)
		}
	}
}

func TestFindCriu(t *testing.T) {
	dir := t.TempDir()
	criu := filepath.Join(dir, "criu")
	other := filepath.Join(dir, "criu-4.1")
	for _, p := range []string{criu, other} {
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := findCriu(criu); err != nil || got != criu {
		t.Errorf("findCriu(%s) = %q, %v", criu, got, err)
	}
	for _, bad := range []string{other, filepath.Join(dir, "none", "criu")} {
		if _, err := findCriu(bad); !errdefs.Is(err, errdefs.KindFailedPrecondition) {
			t.Errorf("findCriu(%s): %v, want failed precondition", bad, err)
		}
	}
	t.Setenv("PATH", dir)
	if got, err := findCriu(""); err != nil || got != criu {
		t.Errorf("findCriu from PATH = %q, %v", got, err)
	}
	t.Setenv("PATH", t.TempDir())
	if _, err := findCriu(""); !errdefs.Is(err, errdefs.KindFailedPrecondition) {
		t.Errorf("no criu in PATH: %v", err)
	}
}
