package runner

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// What a restore killed midway leaves in the runtime's root: a state
// directory without state.json, holding libcontainer's bind mount of the
// root filesystem (criu-root). unmountBeneath detaches it, so the
// directory can go and the root filesystem is no longer pinned.
func TestUnmountBeneath(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	rootfs := t.TempDir()
	if err := os.WriteFile(filepath.Join(rootfs, "file"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "ctr")
	criuRoot := filepath.Join(state, "criu-root")
	if err := os.MkdirAll(criuRoot, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(rootfs, criuRoot, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		t.Skipf("bind mount: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(criuRoot, unix.MNT_DETACH) })
	if err := unmountBeneath(state); err != nil {
		t.Fatal(err)
	}
	if mounted, _ := mountinfo.Mounted(criuRoot); mounted {
		t.Fatal("criu-root is still mounted")
	}
	if err := os.RemoveAll(state); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(rootfs, "file")); err != nil {
		t.Fatalf("the root filesystem lost its file through the removal: %v", err)
	}
}
