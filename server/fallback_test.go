package server

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-cri/berth/config"
)

// network.fallback_config: the built-in config is the file in contrib/,
// a path is read when used, "none" is no fallback.
func TestFallbackNetwork(t *testing.T) {
	shipped, err := os.ReadFile("../contrib/cni/10-berth-bridge.conflist")
	if err != nil {
		t.Fatal(err)
	}
	b, err := fallbackNetwork(config.FallbackBuiltin).Load()
	if err != nil || !bytes.Equal(b, shipped) {
		t.Errorf("builtin = %q, %v; want contrib/cni/10-berth-bridge.conflist", b, err)
	}
	if fb := fallbackNetwork(config.FallbackNone); fb != nil {
		t.Errorf("none = %+v, want nil", fb)
	}
	p := filepath.Join(t.TempDir(), "fb.conflist")
	fb := fallbackNetwork(p)
	if _, err := fb.Load(); err == nil {
		t.Error("a missing fallback file loaded")
	}
	if err := os.WriteFile(p, []byte("edited"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := fb.Load(); err != nil || string(b) != "edited" || fb.Source != p {
		t.Errorf("file fallback = %q %v (source %q)", b, err, fb.Source)
	}
}
