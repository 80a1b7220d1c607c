// Package ids makes and finds pod and container ids: 64 random hex digits,
// as containerd and CRI-O make them, looked up by the full id or a unique
// prefix (crictl prints 13 digits). Only a Valid id ever becomes a path.
package ids

import (
	"crypto/rand"
	"encoding/hex"
	"strings"

	"github.com/berth-cri/berth/errdefs"
)

// Len is the length of a full id.
const Len = 64

// New returns a random id.
func New() string {
	var b [Len / 2]byte
	rand.Read(b[:]) // never fails: crypto/rand panics rather than return an error
	return hex.EncodeToString(b[:])
}

// Valid reports whether s is a full, well-formed id.
func Valid(s string) bool { return len(s) == Len && isHex(s) }

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Lookup finds ref in m by full id, or else by unique prefix among the
// entries listed(v) accepts (nil accepts all). what names the kind of
// thing in errors ("pod sandbox", "container"): an empty or ambiguous ref
// is Invalid, an unknown one NotFound. A linear scan: a node holds a few
// hundred pods and containers, where a prefix tree (containerd's
// truncindex) buys nothing measurable.
func Lookup[T any](m map[string]T, ref, what string, listed func(T) bool) (T, error) {
	var zero T
	if ref == "" {
		return zero, errdefs.Invalidf("%s id is empty", what)
	}
	if v, ok := m[ref]; ok {
		return v, nil
	}
	var found T
	n := 0
	if len(ref) < Len && isHex(ref) {
		for id, v := range m {
			if strings.HasPrefix(id, ref) && (listed == nil || listed(v)) {
				found = v
				n++
			}
		}
	}
	switch n {
	case 0:
		return zero, errdefs.NotFoundf("%s %q not found", what, ref)
	case 1:
		return found, nil
	}
	return zero, errdefs.Invalidf("%s id prefix %q is ambiguous: it matches %d", what, ref, n)
}
