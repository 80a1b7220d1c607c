package stats

import (
	"os"
	"testing"

	"github.com/opencontainers/cgroups"
)

// TestMain lets opencontainers/cgroups read the fake trees under the test's
// temp dirs (it otherwise insists on files of a cgroup filesystem), as the
// library's own tests and runc's do.
func TestMain(m *testing.M) {
	cgroups.TestMode = true
	os.Exit(m.Run())
}
