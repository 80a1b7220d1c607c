package server

import (
	"testing"
)

func TestImageUser(t *testing.T) {
	for _, c := range []struct {
		user     string
		uid      *int64
		username string
	}{
		{"", ptr(0), ""},
		{"0", ptr(0), ""},
		{"1000", ptr(1000), ""},
		{"1000:1000", ptr(1000), ""},
		{"berth", nil, "berth"},
		{"berth:staff", nil, "berth"},
	} {
		uid, name := imageUser(c.user)
		if name != c.username || (uid == nil) != (c.uid == nil) || (uid != nil && uid.Value != *c.uid) {
			t.Errorf("imageUser(%q) = %v, %q", c.user, uid, name)
		}
	}
}

func ptr(v int64) *int64 { return &v }
