package launch

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// The leak check sees a leaked cgroup in either layout.
func TestCgroupsLeftSeesBothLayouts(t *testing.T) {
	for name, dirs := range map[string][]string{
		"v2":     {"berth-test/pod-a", "berth-test/pod-a/berth-c"},
		"v1":     {"memory/berth-test/pod-b", "cpu/berth-test/pod-b"},
		"hybrid": {"memory/berth-test/pod-c", "unified/berth-test/pod-c"},
	} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			var want []string
			for _, d := range dirs {
				if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
					t.Fatal(err)
				}
				if filepath.Base(filepath.Dir(d)) == "berth-test" {
					want = append(want, filepath.Join(root, d))
				}
			}
			got := cgroupsLeft(root, "berth-test", "pod-*")
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("found %v, want %v", got, want)
			}
		})
	}
	if got := cgroupsLeft(t.TempDir(), "berth-test", "pod-*"); len(got) != 0 {
		t.Fatalf("found %v in an empty tree", got)
	}
}
