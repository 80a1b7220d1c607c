package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-cri/berth/test/framework"
)

// TestDebugSocketServesProfiles: `[debug] address` serves Go's profiles
// on a root-only unix socket, which goes with the daemon.
func TestDebugSocketServesProfiles(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "debug.sock")
	d := framework.StartDaemon(t, framework.Options{ConfigTOML: fmt.Sprintf("[debug]\naddress = %q\n", sock)})

	st, err := os.Stat(sock)
	if err != nil {
		t.Fatalf("debug socket: %v", err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("debug socket mode %v, want 0600", st.Mode().Perm())
	}
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
	get := func(path string) []byte {
		t.Helper()
		resp, err := client.Get("http://berthd" + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s\n%s", path, resp.Status, b)
		}
		return b
	}
	if idx := get("/debug/pprof/"); !strings.Contains(string(idx), "goroutine") {
		t.Errorf("the profile index lists no goroutine profile:\n%s", idx)
	}
	// A profile is gzipped protobuf.
	if heap := get("/debug/pprof/heap"); !bytes.HasPrefix(heap, []byte{0x1f, 0x8b}) {
		t.Errorf("heap profile is not gzip: % x", heap[:min(len(heap), 8)])
	}
	if stacks := get("/debug/pprof/goroutine?debug=2"); !strings.Contains(string(stacks), "server.") {
		t.Errorf("berthd's goroutines show none of package server:\n%.2000s", stacks)
	}

	if err := d.Stop(t); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("the debug socket outlived berthd: %v", err)
	}
}

// TestDebugSocketLeavesOtherFiles: berthd replaces a stale socket at the
// debug address but refuses to start over any other file there.
func TestDebugSocketLeavesOtherFiles(t *testing.T) {
	framework.RequireRoot(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "not-a-socket")
	if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "berth.toml")
	toml := fmt.Sprintf("root = %q\nrunroot = %q\nlisten = %q\n[debug]\naddress = %q\n",
		filepath.Join(dir, "root"), filepath.Join(dir, "run"), "unix://"+filepath.Join(dir, "berth.sock"), path)
	if err := os.WriteFile(conf, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(framework.BinDir(t), "berthd"), "--config", conf)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not a socket") {
		t.Fatalf("berthd over a regular file at the debug address: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "keep me" {
		t.Errorf("the file at the debug address was changed: %q %v", b, err)
	}
}
