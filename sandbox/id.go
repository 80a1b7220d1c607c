package sandbox

import (
	"crypto/rand"
	"encoding/hex"
)

const idLen = 64

// newID returns a random 64-hex pod id, as containerd and CRI-O make them.
func newID() string {
	var b [idLen / 2]byte
	rand.Read(b[:]) // never fails (crypto/rand panics rather than return an error)
	return hex.EncodeToString(b[:])
}

// validID reports whether s could be a full pod id. Only such names ever
// become directory names.
func validID(s string) bool {
	return len(s) == idLen && isHex(s)
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
