package framework

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// recorder is a testing.TB that keeps what the daemon's teardown reports
// instead of failing the real test, and runs the cleanups when asked.
type recorder struct {
	*testing.T
	errors, logs []string
	cleanups     []func()
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
func (r *recorder) Error(args ...any) { r.errors = append(r.errors, fmt.Sprint(args...)) }
func (r *recorder) Logf(format string, args ...any) {
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}
func (r *recorder) Failed() bool     { return len(r.errors) > 0 }
func (r *recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }
func (r *recorder) end() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

// What berthd leaves fails the test, which then gets berthd's whole log;
// a clean test gets neither.
func TestTeardownReportsLeftoversAndLog(t *testing.T) {
	if os.Getenv("BERTH_TEST_BINDIR") == "" {
		t.Skip("BERTH_TEST_BINDIR (make build's bin/) is not set")
	}
	clean := &recorder{T: t}
	StartDaemon(clean, Options{})
	clean.end()
	if len(clean.errors) > 0 || len(clean.logs) > 0 {
		t.Errorf("a clean test got errors %q and logs %d", clean.errors, len(clean.logs))
	}

	leaky := &recorder{T: t}
	d := StartDaemon(leaky, Options{})
	mnt := d.Path("leftmount")
	os.Mkdir(mnt, 0o755)
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, ""); err != nil {
		leaky.end()
		t.Fatal(err)
	}
	leaky.end()
	if len(leaky.errors) != 1 || leaky.errors[0] != "left behind: mount "+mnt {
		t.Errorf("errors %q, want the mount left behind", leaky.errors)
	}
	if len(leaky.logs) != 1 || !strings.Contains(leaky.logs[0], "berthd log ("+d.LogPath+")") ||
		!strings.Contains(leaky.logs[0], "berthd serving") {
		t.Errorf("failed test's log dump: %q", leaky.logs)
	}
	if _, err := os.Stat(d.Dir); !os.IsNotExist(err) {
		t.Errorf("%s still there after the teardown: %v", d.Dir, err)
	}
}
