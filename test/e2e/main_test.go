// Package e2e holds Berth's end-to-end tests: a real berthd (built from
// this tree) on private roots, real runtimes, namespaces, CNI plugins and
// a registry on 127.0.0.1. One file per area.
package e2e

import (
	"testing"

	"github.com/berth-cri/berth/test/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }
