package server

import (
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// redacted replaces a secret in the debug log.
const redacted = "<redacted>"

// redactSecrets returns req fit for the debug log, which writes whole
// requests: a PullImageRequest's credentials and a CreateContainerRequest's
// environment values (where Kubernetes Secrets land) are replaced in a
// copy; every other request is req itself.
func redactSecrets(req any) any {
	switch r := req.(type) {
	case *runtimeapi.PullImageRequest:
		if r.GetAuth() == nil {
			return req
		}
		c := proto.Clone(r).(*runtimeapi.PullImageRequest)
		c.Auth = &runtimeapi.AuthConfig{Username: r.Auth.GetUsername(), ServerAddress: r.Auth.GetServerAddress()}
		if r.Auth.GetPassword() != "" || r.Auth.GetAuth() != "" || r.Auth.GetIdentityToken() != "" || r.Auth.GetRegistryToken() != "" {
			c.Auth.Password = redacted
		}
		return c
	case *runtimeapi.CreateContainerRequest:
		if len(r.GetConfig().GetEnvs()) == 0 {
			return req
		}
		c := proto.Clone(r).(*runtimeapi.CreateContainerRequest)
		for _, kv := range c.Config.Envs {
			if kv != nil && len(kv.Value) > 0 {
				kv.Value = []byte(redacted)
			}
		}
		return c
	}
	return req
}
