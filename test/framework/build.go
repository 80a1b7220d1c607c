package framework

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// BuildTags are the tags every Berth binary is built with.
const BuildTags = "containers_image_openpgp exclude_graphdriver_btrfs exclude_graphdriver_devicemapper seccomp"

// Binaries built for the tests, when their cmd/ directory exists.
var Binaries = []string{"berthd", "berthctl", "berth-monitor", "berth-runner", "berth-pause"}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// RepoRoot is the repository's top directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// BinDir builds the binaries once per test process and returns their
// directory. BERTH_TEST_BINDIR, when set, names prebuilt binaries instead.
func BinDir(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if d := os.Getenv("BERTH_TEST_BINDIR"); d != "" {
			binDir = d
			return
		}
		binDir, buildErr = os.MkdirTemp("", "berth-bin-")
		if buildErr != nil {
			return
		}
		buildErr = build(binDir)
	})
	if buildErr != nil {
		t.Fatalf("build binaries: %v", buildErr)
	}
	return binDir
}

func build(dir string) error {
	root := RepoRoot()
	for _, name := range Binaries {
		if _, err := os.Stat(filepath.Join(root, "cmd", name)); err != nil {
			continue
		}
		cmd := exec.Command("go", "build", "-tags", BuildTags, "-o", filepath.Join(dir, name), "./cmd/"+name)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/%s: %v\n%s", name, err, out)
		}
	}
	return nil
}

// HasBinary reports whether name was built (its cmd/ directory exists).
func HasBinary(t testing.TB, name string) bool {
	_, err := os.Stat(filepath.Join(BinDir(t), name))
	return err == nil
}

// Main is TestMain for end-to-end packages: it runs the tests, then
// removes the binaries it built.
func Main(m *testing.M) {
	code := m.Run()
	if binDir != "" && os.Getenv("BERTH_TEST_BINDIR") == "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// RequireRoot skips the test unless it runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: berthd creates namespaces, mounts and cgroups")
	}
}
