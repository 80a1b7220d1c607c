package storage

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
)

func TestCopyLayerEntriesDropsWhiteoutsAndMountPoints(t *testing.T) {
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	for _, h := range []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "etc/.wh.group", Typeflag: tar.TypeReg},
		{Name: "etc/hosts", Typeflag: tar.TypeReg, Size: 3},
		{Name: "added", Typeflag: tar.TypeReg, Size: 3},
		{Name: "escape", Typeflag: tar.TypeSymlink, Linkname: "/"},
		{Name: "proc/", Typeflag: tar.TypeDir},
		{Name: "proc/self", Typeflag: tar.TypeReg, Size: 3},
		{Name: "opaque/.wh..wh..opq", Typeflag: tar.TypeReg},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte("abc"))
		}
	}
	tw.Close()
	var out bytes.Buffer
	if err := copyLayerEntries(&layer, &out, []string{"/proc", "/etc/hosts"}); err != nil {
		t.Fatal(err)
	}
	var got []string
	tr := tar.NewReader(&out)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, h.Name)
	}
	if want := []string{"etc/", "added", "escape"}; !reflect.DeepEqual(got, want) {
		t.Errorf("entries %q, want %q", got, want)
	}
}
