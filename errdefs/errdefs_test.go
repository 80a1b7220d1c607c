package errdefs

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
)

// A full filesystem or quota is ResourceExhausted wherever it sits in the
// chain, and when a library passed it on as text; a marked kind wins.
func TestNoSpaceIsResourceExhausted(t *testing.T) {
	for name, err := range map[string]error{
		"ENOSPC":  fmt.Errorf("write record: %w", &os.PathError{Op: "write", Path: "/var/lib/berth/pods/x/record.json", Err: syscall.ENOSPC}),
		"EDQUOT":  &os.PathError{Op: "mkdir", Path: "/run/berth/x", Err: syscall.EDQUOT},
		"as text": errors.New("writing blob: storing blob to file \"/var/lib/berth/storage/x\": write /var/lib/berth/storage/x: no space left on device"),
	} {
		if k := KindOf(err); k != KindResourceExhausted {
			t.Errorf("%s: kind %v, want resource exhausted", name, k)
		}
	}
	if k := KindOf(Invalid(fmt.Errorf("x: %w", syscall.ENOSPC))); k != KindInvalid {
		t.Errorf("a marked kind: %v, want invalid", k)
	}
	if k := KindOf(errors.New("other")); k != KindUnknown {
		t.Errorf("other: %v", k)
	}
}
