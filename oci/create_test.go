package oci

import (
	"testing"

	"github.com/berth-cri/berth/errdefs"
)

func TestContainerLogPath(t *testing.T) {
	for _, tc := range []struct {
		dir, rel, want string
		invalid        bool
	}{
		{"/var/log/pods/p", "c/0.log", "/var/log/pods/p/c/0.log", false},
		{"/var/log/pods/p/", "./c/../c/0.log", "/var/log/pods/p/c/0.log", false},
		{"", "c/0.log", "", false},
		{"/var/log/pods/p", "", "", false},
		{"/var/log/pods/p", "/etc/shadow", "", true},
		{"/var/log/pods/p", "../q/0.log", "", true},
		{"/var/log/pods/p", "c/../../p2/0.log", "", true},
		{"/var/log/pods/p", "..", "", true},
		{"var/log/pods/p", "c/0.log", "", true},
	} {
		got, err := containerLogPath(tc.dir, tc.rel)
		if tc.invalid {
			if !errdefs.IsInvalid(err) {
				t.Errorf("containerLogPath(%q, %q) = %q, %v; want an invalid-argument error", tc.dir, tc.rel, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("containerLogPath(%q, %q) = %q, %v; want %q", tc.dir, tc.rel, got, err, tc.want)
		}
	}
}
