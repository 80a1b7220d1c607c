package testimage

import (
	"archive/tar"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// TestOfficialLayout checks what critest relies on: applets are hard
// links to /bin/busybox (so masking /bin/ls masks only ls), busybox's
// users exist, a setuid file keeps its bit, and builds are reproducible.
func TestOfficialLayout(t *testing.T) {
	if _, err := os.Stat(BusyboxPath); err != nil {
		t.Skipf("no %s (apt-get install busybox-static)", BusyboxPath)
	}
	build := func() (string, map[string]*tar.Header, string) {
		base, err := OfficialBusyboxLayer(BusyboxPath)
		if err != nil {
			t.Fatal(err)
		}
		img, err := Compose(Spec{Name: "nnp", User: "1002",
			Files: []File{{Path: "/usr/local/bin/nnp", Content: "x", Mode: 0o755 | os.ModeSetuid}}}, base)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := SingleIndex(img, false)
		if err != nil {
			t.Fatal(err)
		}
		d, err := idx.Digest()
		if err != nil {
			t.Fatal(err)
		}
		files := map[string]*tar.Header{}
		var passwd strings.Builder
		tr := tar.NewReader(mutate.Extract(img))
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			files[strings.TrimSuffix(h.Name, "/")] = h
			if h.Name == "etc/passwd" {
				io.Copy(&passwd, tr)
			}
		}
		return d.String(), files, passwd.String()
	}
	d1, files, passwd := build()
	if h := files["bin/ls"]; h == nil || h.Typeflag != tar.TypeLink || h.Linkname != "bin/busybox" {
		t.Errorf("bin/ls is not a hard link to bin/busybox: %+v", h)
	}
	if h := files["usr/local/bin/nnp"]; h == nil || h.Mode&0o4000 == 0 {
		t.Errorf("nnp lost its setuid bit: %+v", h)
	}
	for _, u := range []string{"\nwww-data:x:33:33:", "\nnobody:x:65534:65534:"} {
		if !strings.Contains(passwd, u) {
			t.Errorf("/etc/passwd lacks %q", u)
		}
	}
	if d2, _, _ := build(); d1 != d2 {
		t.Errorf("two builds differ: %s, %s", d1, d2)
	}
}
