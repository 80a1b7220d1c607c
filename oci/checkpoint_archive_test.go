package oci

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-cri/berth/errdefs"
)

type testEntry struct {
	name, link string
	typ        byte
	body       string
}

func testArchive(t *testing.T, entries ...testEntry) string {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Linkname: e.link, Typeflag: typ, Mode: 0o600, Size: int64(len(e.body))}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	p := filepath.Join(t.TempDir(), "a.tar")
	if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

var validEntries = []testEntry{
	{name: "checkpoint/", typ: tar.TypeDir},
	{name: "checkpoint/inventory.img", body: "img"},
	{name: "config.dump", body: `{"id":"abc","rootfsImageRef":"sha256:1","rootfsImageName":"busybox"}`},
	{name: "spec.dump", body: `{}`},
	{name: "deleted.files", body: `["/etc/group"]`},
	{name: "rootfs-diff.tar", body: ""},
}

func TestUnpackCheckpoint(t *testing.T) {
	dir := t.TempDir()
	cc, err := unpackCheckpoint(archiveFile(testArchive(t, validEntries...)), dir)
	if err != nil {
		t.Fatal(err)
	}
	if cc.Config.RootfsImageRef != "sha256:1" || len(cc.Deleted) != 1 || !cc.HasDiff {
		t.Fatalf("contents %+v", cc)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "checkpoint", "inventory.img")); err != nil || string(b) != "img" {
		t.Fatalf("inventory.img: %q %v", b, err)
	}
}

func TestUnpackCheckpointRefuses(t *testing.T) {
	with := func(extra ...testEntry) []testEntry {
		return append(append([]testEntry(nil), validEntries...), extra...)
	}
	without := func(name string) []testEntry {
		var out []testEntry
		for _, e := range validEntries {
			if e.name != name {
				out = append(out, e)
			}
		}
		return out
	}
	big := strings.Repeat(" ", maxMetadataBytes+1)
	for _, tc := range []struct {
		what    string
		entries []testEntry
		want    string
	}{
		{"traversal", with(testEntry{name: "../x", body: "x"}), "leaves"},
		{"absolute", with(testEntry{name: "/x", body: "x"}), "absolute"},
		{"symlink", with(testEntry{name: "l", typ: tar.TypeSymlink, link: "/"}), "symlink"},
		{"hard link", with(testEntry{name: "l", typ: tar.TypeLink, link: "/etc/shadow"}), "hard link"},
		{"fifo", with(testEntry{name: "f", typ: tar.TypeFifo}), "fifo"},
		{"twice", with(testEntry{name: "./spec.dump", body: "{}"}), "twice"},
		{"file over a directory", with(testEntry{name: "checkpoint/inventory.img/x", body: "x"}), "checkpoint/inventory.img"},
		{"empty", nil, "empty"},
		{"no config", without("config.dump"), "no config.dump"},
		{"no spec", without("spec.dump"), "no spec.dump"},
		{"no images", without("checkpoint/inventory.img"), "inventory.img"},
		{"huge metadata", append(without("spec.dump"), testEntry{name: "spec.dump", body: big}), "larger than"},
		{"no image named", append(without("config.dump"), testEntry{name: "config.dump", body: `{"id":"x"}`}), "names no image"},
		{"deleted root", append(without("deleted.files"), testEntry{name: "deleted.files", body: `["/"]`}), "deleted.files"},
	} {
		t.Run(tc.what, func(t *testing.T) {
			_, err := unpackCheckpoint(archiveFile(testArchive(t, tc.entries...)), t.TempDir())
			if !errdefs.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want InvalidArgument naming %q", err, tc.want)
			}
		})
	}
	if _, err := unpackCheckpoint(archiveFile(t.TempDir()), t.TempDir()); !errdefs.IsInvalid(err) {
		t.Errorf("a directory as the archive: %v", err)
	}
}
