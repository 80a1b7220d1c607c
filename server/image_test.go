package server

import (
	"fmt"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
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

func TestRedactSecrets(t *testing.T) {
	req := &runtimeapi.PullImageRequest{
		Image: &runtimeapi.ImageSpec{Image: "x"},
		Auth:  &runtimeapi.AuthConfig{Username: "u", Password: "pw-secret", Auth: "YXV0aC1zZWNyZXQ=", IdentityToken: "id-secret", RegistryToken: "reg-secret"},
	}
	out := fmt.Sprint(redactSecrets(req))
	for _, secret := range []string{"pw-secret", "YXV0aC1zZWNyZXQ=", "id-secret", "reg-secret"} {
		if strings.Contains(out, secret) {
			t.Errorf("redacted request shows %q: %s", secret, out)
		}
	}
	if !strings.Contains(out, "u") || req.Auth.Password != "pw-secret" {
		t.Errorf("redaction changed the request or lost the user: %s", out)
	}
	other := &runtimeapi.ImageStatusRequest{}
	if redactSecrets(other) != any(other) {
		t.Error("other requests must pass through")
	}
}
