package testimage

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// RegistryOptions configure StartRegistry.
type RegistryOptions struct {
	// Username and Password, when set, make every request need HTTP
	// basic auth (the registry answers 401 with a Basic challenge).
	Username, Password string
	// TokenAuth switches to the Docker token protocol: requests need
	// "Authorization: Bearer <Token()>" (a Bearer challenge names the
	// realm <URL>/token), and the token endpoint hands the token out for
	// Username/Password (GET, basic auth) or for IdentityToken (OAuth2
	// POST with grant_type=refresh_token).
	TokenAuth     bool
	IdentityToken string
	// BlobDelay spreads each blob download over about this long (see
	// SetBlobDelay).
	BlobDelay time.Duration
	// Log receives the registry's request log; discarded when nil.
	Log io.Writer
}

// Registry is a Docker/OCI registry on 127.0.0.1:<random port>, backed by
// memory, that counts the requests it gets.
type Registry struct {
	// Host is "127.0.0.1:PORT", the registry part of references.
	Host string
	// URL is "http://127.0.0.1:PORT".
	URL string

	opts  RegistryOptions
	srv   *httptest.Server
	delay atomic.Int64 // time.Duration

	token string // the bearer token, with TokenAuth

	mu       sync.Mutex
	requests map[string]int // "METHOD /path" -> count
	// withAuth counts requests that carried credentials.
	withAuth int
	stopped  bool
}

// StartRegistry starts a registry and stops it when the test ends.
func StartRegistry(t testing.TB, opts RegistryOptions) *Registry {
	t.Helper()
	r := NewRegistry(opts)
	t.Cleanup(r.Stop)
	return r
}

// NewRegistry starts a registry outside a test (the critest harness
// serves images with it); the caller stops it with Stop.
func NewRegistry(opts RegistryOptions) *Registry {
	out := opts.Log
	if out == nil {
		out = io.Discard
	}
	r := &Registry{opts: opts, requests: map[string]int{}}
	if opts.TokenAuth {
		var b [16]byte
		crand.Read(b[:])
		r.token = "testimage-" + hex.EncodeToString(b[:])
	}
	r.delay.Store(int64(opts.BlobDelay))
	inner := registry.New(registry.Logger(log.New(out, "registry: ", log.LstdFlags)))
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.serve(inner, w, req)
	}))
	r.URL = r.srv.URL
	r.Host = strings.TrimPrefix(r.srv.URL, "http://")
	return r
}

func (r *Registry) serve(inner http.Handler, w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.requests[req.Method+" "+req.URL.Path]++
	if hasCredentials(req) {
		r.withAuth++
	}
	r.mu.Unlock()
	if r.opts.TokenAuth {
		if req.URL.Path == "/token" {
			r.serveToken(w, req)
			return
		}
		if req.Header.Get("Authorization") != "Bearer "+r.token {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="testimage"`, r.URL))
			unauthorized(w)
			return
		}
	} else if r.opts.Username != "" {
		u, p, ok := req.BasicAuth()
		if !ok || u != r.opts.Username || p != r.opts.Password {
			w.Header().Set("WWW-Authenticate", `Basic realm="testimage"`)
			unauthorized(w)
			return
		}
	}
	if d := time.Duration(r.delay.Load()); d > 0 && req.Method == http.MethodGet && isBlobGet(req.URL.Path) {
		w = &slowWriter{ResponseWriter: w, ctx: req.Context(), total: d}
	}
	inner.ServeHTTP(w, req)
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
}

// serveToken is the token endpoint of the Docker token protocol.
func (r *Registry) serveToken(w http.ResponseWriter, req *http.Request) {
	ok := false
	switch req.Method {
	case http.MethodGet:
		u, p, basic := req.BasicAuth()
		ok = basic && r.opts.Username != "" && u == r.opts.Username && p == r.opts.Password
	case http.MethodPost:
		ok = req.ParseForm() == nil && req.PostForm.Get("grant_type") == "refresh_token" &&
			r.opts.IdentityToken != "" && req.PostForm.Get("refresh_token") == r.opts.IdentityToken
	}
	if !ok {
		unauthorized(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"token":%q,"access_token":%q,"expires_in":300}`, r.token, r.token)
}

// Token is the bearer token a TokenAuth registry accepts.
func (r *Registry) Token() string { return r.token }

// isBlobGet reports whether path is /v2/<name>/blobs/<digest>.
func isBlobGet(path string) bool {
	i := strings.LastIndex(path, "/blobs/")
	return i > 0 && strings.HasPrefix(path, "/v2/") && !strings.Contains(path[i+len("/blobs/"):], "/")
}

// slowWriter trickles a response out in small pieces so that sending the
// whole body takes about total: a client can be cancelled halfway through
// a layer.
type slowWriter struct {
	http.ResponseWriter
	ctx   context.Context
	total time.Duration
	size  int64
}

const slowChunk = 16 << 10

func (s *slowWriter) Write(p []byte) (int, error) {
	if s.size == 0 {
		s.size, _ = strconv.ParseInt(s.Header().Get("Content-Length"), 10, 64)
		if s.size <= 0 {
			s.size = int64(len(p))
		}
	}
	written := 0
	for len(p) > 0 {
		n := min(len(p), slowChunk)
		pause := time.Duration(float64(s.total) * float64(n) / float64(s.size))
		select {
		case <-s.ctx.Done():
			return written, s.ctx.Err()
		case <-time.After(pause):
		}
		m, err := s.ResponseWriter.Write(p[:n])
		written += m
		if err != nil {
			return written, err
		}
		if f, ok := s.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		p = p[n:]
	}
	return written, nil
}

// SetBlobDelay makes each later blob download take about d (0: full speed).
func (r *Registry) SetBlobDelay(d time.Duration) { r.delay.Store(int64(d)) }

// Stop shuts the registry down, dropping open connections: from now on
// it refuses connections, like a registry that is down. Stop is
// idempotent.
func (r *Registry) Stop() {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return
	}
	r.stopped = true
	r.mu.Unlock()
	r.srv.CloseClientConnections()
	r.srv.Close()
}

// Ref is the full reference of repoTag ("name:tag" or "name@digest") in
// this registry.
func (r *Registry) Ref(repoTag string) string { return r.Host + "/" + repoTag }

func (r *Registry) remoteOptions() []remote.Option {
	opts := []remote.Option{}
	switch {
	case r.opts.TokenAuth:
		opts = append(opts, remote.WithAuth(&authn.Bearer{Token: r.token}))
	case r.opts.Username != "":
		opts = append(opts, remote.WithAuth(&authn.Basic{Username: r.opts.Username, Password: r.opts.Password}))
	}
	return opts
}

// PushImage pushes img as repoTag ("name:tag") and returns the manifest
// digest and the full reference "127.0.0.1:PORT/name:tag".
func (r *Registry) PushImage(repoTag string, img v1.Image) (digest, ref string, err error) {
	ref = r.Ref(repoTag)
	nref, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return "", "", err
	}
	if err := remote.Write(nref, img, r.remoteOptions()...); err != nil {
		return "", "", fmt.Errorf("push %s: %w", ref, err)
	}
	h, err := img.Digest()
	if err != nil {
		return "", "", err
	}
	return h.String(), ref, nil
}

// Push is PushImage that fails the test on error.
func (r *Registry) Push(t testing.TB, repoTag string, img v1.Image) (digest, ref string) {
	t.Helper()
	digest, ref, err := r.PushImage(repoTag, img)
	if err != nil {
		t.Fatal(err)
	}
	return digest, ref
}

// PushIndex pushes an image index (with its images) as repoTag and
// returns the index digest and the full reference.
func (r *Registry) PushIndex(t testing.TB, repoTag string, idx v1.ImageIndex) (digest, ref string) {
	t.Helper()
	digest, ref, err := r.PushImageIndex(repoTag, idx)
	if err != nil {
		t.Fatal(err)
	}
	return digest, ref
}

// PushImageIndex is PushIndex returning its error.
func (r *Registry) PushImageIndex(repoTag string, idx v1.ImageIndex) (digest, ref string, err error) {
	ref = r.Ref(repoTag)
	nref, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return "", "", err
	}
	if err := remote.WriteIndex(nref, idx, r.remoteOptions()...); err != nil {
		return "", "", fmt.Errorf("push index %s: %w", ref, err)
	}
	h, err := idx.Digest()
	if err != nil {
		return "", "", err
	}
	return h.String(), ref, nil
}

// Requests returns how many requests came for method and path, e.g.
// ("GET", "/v2/busybox/manifests/1.0").
func (r *Registry) Requests(method, path string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests[method+" "+path]
}

// hasCredentials reports whether req carries a secret: basic auth with a
// user or password, or a bearer token (an anonymous client may send
// "Basic " of an empty user and password).
func hasCredentials(req *http.Request) bool {
	if u, p, ok := req.BasicAuth(); ok {
		return u != "" || p != ""
	}
	h := req.Header.Get("Authorization")
	tok, bearer := strings.CutPrefix(h, "Bearer ")
	return h != "" && (!bearer || tok != "")
}

// RequestsWithCredentials returns how many requests carried credentials
// (a user or password, or a token got with them).
func (r *Registry) RequestsWithCredentials() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.withAuth
}

// BlobGets returns how many times the blob with digest was fetched (GET),
// summed over every repository.
func (r *Registry) BlobGets(digest string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for k, c := range r.requests {
		if strings.HasPrefix(k, "GET /v2/") && strings.HasSuffix(k, "/blobs/"+digest) {
			n += c
		}
	}
	return n
}

// AllRequests returns a copy of the counters, keyed "METHOD /path".
func (r *Registry) AllRequests() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.requests))
	for k, v := range r.requests {
		out[k] = v
	}
	return out
}

// ResetRequests zeroes the counters (e.g. after pushing).
func (r *Registry) ResetRequests() {
	r.mu.Lock()
	r.requests = map[string]int{}
	r.withAuth = 0
	r.mu.Unlock()
}
