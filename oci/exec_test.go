package oci

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFitOutput(t *testing.T) {
	a := func(n int) []byte { return bytes.Repeat([]byte("o"), n) }
	e := func(n int) []byte { return bytes.Repeat([]byte("e"), n) }
	for _, tc := range []struct {
		out, err, max, wantOut, wantErr int
	}{
		{10, 10, 100, 10, 10},
		{100, 100, 100, 50, 50},
		{10, 500, 100, 10, 90},
		{500, 10, 100, 90, 10},
		{0, 500, 100, 0, 100},
		{101, 0, 100, 100, 0},
	} {
		o, r := fitOutput(a(tc.out), e(tc.err), tc.max)
		if len(o) != tc.wantOut || len(r) != tc.wantErr {
			t.Errorf("fitOutput(%d, %d, %d) = %d, %d; want %d, %d", tc.out, tc.err, tc.max, len(o), len(r), tc.wantOut, tc.wantErr)
		}
	}
}

// The exec log is read back into output without its record overhead.
func TestReadExecOutput(t *testing.T) {
	path := filepath.Join(t.TempDir(), "exec.log")
	log := strings.Join([]string{
		"2016-10-06T00:17:09.669794202Z stdout F hello",
		"2016-10-06T00:17:09.669794202Z stderr P par",
		"2016-10-06T00:17:09.669794202Z stderr F tial",
		"2016-10-06T00:17:09.669794202Z stdout F ",
		"2016-10-06T00:17:09.669794202Z stdout P cut",
	}, "\n") + "\n"
	if err := os.WriteFile(path, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := readExecOutput(path, 1<<20)
	if err != nil || string(out) != "hello\n\ncut" || string(errOut) != "partial\n" {
		t.Fatalf("got %q %q %v", out, errOut, err)
	}
}
