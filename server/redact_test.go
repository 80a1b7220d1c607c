package server

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

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

// The debug log writes whole requests: a container's environment values
// (Kubernetes Secrets end up there) must not reach it, its keys may.
func TestDebugLogRedactsContainerEnv(t *testing.T) {
	var buf bytes.Buffer
	level, out := logrus.GetLevel(), logrus.StandardLogger().Out
	logrus.SetLevel(logrus.DebugLevel)
	logrus.SetOutput(&buf)
	t.Cleanup(func() { logrus.SetLevel(level); logrus.SetOutput(out) })

	req := &runtimeapi.CreateContainerRequest{
		PodSandboxId: "p",
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "c"},
			Image:    &runtimeapi.ImageSpec{Image: "busybox"},
			Envs: []*runtimeapi.KeyValue{
				{Key: "DB_PASSWORD", Value: []byte("hunter2-secret")},
				{Key: "TOKEN", Value: []byte("tok-secret")},
				nil,
			},
		},
	}
	unary, _ := Interceptors(nil)
	var seen *runtimeapi.CreateContainerRequest
	_, err := unary(context.Background(), req, &grpc.UnaryServerInfo{FullMethod: "/runtime.v1.RuntimeService/CreateContainer"},
		func(ctx context.Context, r any) (any, error) {
			seen = r.(*runtimeapi.CreateContainerRequest)
			return &runtimeapi.CreateContainerResponse{}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	log := buf.String()
	if !strings.Contains(log, "DB_PASSWORD") {
		t.Fatalf("debug log has no request: %s", log)
	}
	for _, secret := range []string{"hunter2-secret", "tok-secret"} {
		if strings.Contains(log, secret) {
			t.Errorf("debug log shows %q: %s", secret, log)
		}
	}
	if string(seen.GetConfig().GetEnvs()[0].GetValue()) != "hunter2-secret" {
		t.Errorf("the handler got a redacted request: %v", seen)
	}
}
