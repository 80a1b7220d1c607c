package testimage

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/google/go-containerregistry/pkg/registry"
)

// NewRegistry starts a plain registry (no auth, no delay) outside a test,
// for programs such as test/bench; the caller stops it with Stop.
// StartRegistry is the form for tests.
func NewRegistry(logTo io.Writer) *Registry {
	if logTo == nil {
		logTo = io.Discard
	}
	r := &Registry{opts: RegistryOptions{Log: logTo}, requests: map[string]int{}}
	inner := registry.New(registry.Logger(log.New(logTo, "registry: ", log.LstdFlags)))
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.serve(inner, w, req)
	}))
	r.URL = r.srv.URL
	r.Host = strings.TrimPrefix(r.srv.URL, "http://")
	return r
}
