package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// removeDirs refuses to remove a pod's directories while anything is
// mounted beneath either of them (RemoveAll would descend into the
// mount), and removes both, record last, once nothing is.
func TestRemoveDirsRefusesMounts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	base := t.TempDir()
	m := &Manager{podsDir: filepath.Join(base, "root", "pods"), runPodsDir: filepath.Join(base, "run", "pods")}
	const id = "abc"
	for _, under := range []string{m.runPodsDir, m.podsDir} {
		t.Run(filepath.Base(filepath.Dir(under)), func(t *testing.T) {
			dir, runDir := filepath.Join(m.podsDir, id), filepath.Join(m.runPodsDir, id)
			mnt := filepath.Join(under, id, "mnt")
			for _, d := range []string{dir, runDir, mnt} {
				if err := os.MkdirAll(d, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(dir, recordFile), []byte("{}"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, ""); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
			if err := os.WriteFile(filepath.Join(mnt, "kept"), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}

			err := m.removeDirs(id)
			if err == nil || !strings.Contains(err.Error(), "still mounted there: "+mnt) {
				t.Fatalf("removeDirs with %s mounted: %v, want a refusal naming it", mnt, err)
			}
			if _, err := os.Stat(filepath.Join(mnt, "kept")); err != nil {
				t.Errorf("the refused removal reached into the mount: %v", err)
			}
			if _, err := os.Stat(filepath.Join(dir, recordFile)); err != nil {
				t.Errorf("the refused removal lost the record: %v", err)
			}

			if err := unix.Unmount(mnt, 0); err != nil {
				t.Fatal(err)
			}
			if err := m.removeDirs(id); err != nil {
				t.Fatalf("removeDirs with nothing mounted: %v", err)
			}
			for _, d := range []string{dir, runDir} {
				if _, err := os.Stat(d); !os.IsNotExist(err) {
					t.Errorf("%s is still there: %v", d, err)
				}
			}
		})
	}
}
