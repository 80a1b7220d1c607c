package oci

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-cri/berth/errdefs"
)

func TestContainerLogPath(t *testing.T) {
	for _, tc := range []struct {
		dir, rel, want string
		invalid        bool
	}{
		{"/var/log/pods/p", "c/0.log", "/var/log/pods/p/c/0.log", false},
		{"/var/log/pods/p/", "./c/../c/0.log", "/var/log/pods/p/c/0.log", false},
		{"", "c/0.log", "", false},
		{"/var/log/pods/p", "", "", false},
		{"/var/log/pods/p", "/etc/shadow", "", true},
		{"/var/log/pods/p", "../q/0.log", "", true},
		{"/var/log/pods/p", "c/../../p2/0.log", "", true},
		{"/var/log/pods/p", "..", "", true},
		{"var/log/pods/p", "c/0.log", "", true},
	} {
		got, err := containerLogPath(tc.dir, tc.rel)
		if tc.invalid {
			if !errdefs.IsInvalid(err) {
				t.Errorf("containerLogPath(%q, %q) = %q, %v; want an invalid-argument error", tc.dir, tc.rel, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("containerLogPath(%q, %q) = %q, %v; want %q", tc.dir, tc.rel, got, err, tc.want)
		}
	}
}

// The directories of a log path are made inside the pod's log directory:
// a symlink planted there is resolved within it, never to the host.
func TestMakeLogDirStaysBeneath(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "c")); err != nil {
		t.Fatal(err)
	}
	if err := makeLogDir(dir, filepath.Join(dir, "c", "sub", "0.log")); err == nil {
		if _, err := os.Stat(filepath.Join(outside, "sub")); err == nil {
			t.Fatal("made a directory outside the log directory")
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("outside the log directory: %v", entries)
	}
	if err := makeLogDir(dir, filepath.Join(dir, "d", "e", "0.log")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "d", "e")); err != nil || !fi.IsDir() {
		t.Fatalf("log directory not made: %v", err)
	}
}
