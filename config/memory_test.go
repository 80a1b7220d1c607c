package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMemoryKeys(t *testing.T) {
	for _, tc := range []struct {
		body string
		want string // part of the error; "" loads
	}{
		{"[memory]\ngc_percent = 50\nsoft_limit = 33554432\nrelease_after_idle = \"5s\"\n", ""},
		{"[memory]\ngc_percent = -1\nrelease_after_idle = \"0s\"\n", ""},
		{"[memory]\ngc_percent = 0\n", "memory.gc_percent"},
		{"[memory]\nsoft_limit = -1\n", "memory.soft_limit"},
		{"[memory]\nrelease_after_idle = \"-1s\"\n", "memory.release_after_idle"},
	} {
		path := filepath.Join(t.TempDir(), "berth.toml")
		if err := os.WriteFile(path, []byte(tc.body), 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := Load(path)
		if tc.want != "" {
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%q: got %v, want an error naming %s", tc.body, err, tc.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.body, err)
		}
		if strings.Contains(tc.body, "gc_percent = 50") && (c.Memory != MemoryConfig{GCPercent: 50, SoftLimit: 32 << 20, ReleaseAfterIdle: Duration{5 * time.Second}}) {
			t.Errorf("loaded %+v", c.Memory)
		}
	}
	if d := Default().Memory; d.GCPercent != 100 || d.SoftLimit != 0 || d.ReleaseAfterIdle.Duration != time.Second {
		t.Errorf("defaults %+v", d)
	}
}
