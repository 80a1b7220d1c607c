package monitor

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A log path a container planted as a symlink, a FIFO, a device or behind
// a symlinked directory is refused, and the file it points at is neither
// written nor chmodded.
func TestLogFileRefusesWhatIsNotARegularFileBeneathTheDir(t *testing.T) {
	outside := t.TempDir()
	target := filepath.Join(outside, "ld.so.preload")
	if err := os.WriteFile(target, []byte("keep\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, plant := range map[string]func(t *testing.T, dir string) string{
		"symlink to a host file": func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "c", "0.log")
			must(t, os.MkdirAll(filepath.Dir(p), 0o755))
			must(t, os.Symlink(target, p))
			return p
		},
		"symlinked directory": func(t *testing.T, dir string) string {
			must(t, os.Symlink(outside, filepath.Join(dir, "c")))
			return filepath.Join(dir, "c", "ld.so.preload")
		},
		"dot-dot": func(t *testing.T, dir string) string {
			rel, err := filepath.Rel(dir, target)
			must(t, err)
			return dir + "/" + rel
		},
		"fifo": func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "0.log")
			must(t, syscall.Mkfifo(p, 0o600))
			return p
		},
		"device": func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "0.log")
			must(t, syscall.Mknod(p, syscall.S_IFCHR|0o600, int(1<<8|3))) // /dev/null
			return p
		},
		"directory": func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "0.log")
			must(t, os.Mkdir(p, 0o755))
			return p
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := plant(t, dir)
			done := make(chan error, 1)
			go func() {
				w, err := OpenLogWriter(dir, path, 0)
				if err == nil {
					w.Close()
				}
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil {
					t.Fatalf("opened %s", path)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("open hangs")
			}
			b, _ := os.ReadFile(target)
			fi, _ := os.Stat(target)
			if string(b) != "keep\n" || fi.Mode().Perm() != 0o600 {
				t.Fatalf("target changed: %q %v", b, fi.Mode())
			}
		})
	}
}

// An existing log keeps its mode (only a new one gets 0640), and a reopen
// after a symlink replaced the rotated file is refused.
func TestLogFileModeOnlyOnCreateAndReopenSafe(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "0.log")
	must(t, os.WriteFile(path, nil, 0o600))
	w, err := OpenLogWriter(dir, path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("existing log's mode changed to %v", fi.Mode().Perm())
	}
	target := filepath.Join(t.TempDir(), "passwd")
	must(t, os.WriteFile(target, []byte("root\n"), 0o644))
	must(t, os.Rename(path, path+".1"))
	must(t, os.Symlink(target, path))
	if err := w.Reopen(); err == nil || !strings.Contains(err.Error(), "container log") {
		t.Fatalf("reopen through a symlink: %v", err)
	}
	w.Stream(StreamStdout).Write([]byte("evil\n"))
	if b, _ := os.ReadFile(target); string(b) != "root\n" {
		t.Fatalf("target written: %q", b)
	}
	must(t, os.Remove(path))
	if err := w.Reopen(); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Fatalf("new log mode %v, want 0640", fi.Mode().Perm())
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
