package storage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-cri/berth/errdefs"
	"github.com/berth-cri/berth/test/testimage"
)

func TestPullByTagDigestAndID(t *testing.T) {
	e := newEnv(t, envOptions{})
	digest, ref, id := e.push(t, "app:1", testimage.Spec{Name: "app", User: "berth", Cmd: []string{"sleep", "1"}})
	ctx := t.Context()

	img, err := e.store.Pull(ctx, ref, Auth{})
	if err != nil {
		t.Fatal(err)
	}
	if img.ID != id {
		t.Fatalf("image ID %s, want the config digest %s", img.ID, id)
	}
	if !slices.Contains(img.RepoTags, ref) {
		t.Errorf("repo tags %v lack %s", img.RepoTags, ref)
	}
	repoDigest := e.reg.Host + "/app@" + digest
	if !slices.Contains(img.RepoDigests, repoDigest) {
		t.Errorf("repo digests %v lack %s", img.RepoDigests, repoDigest)
	}
	if img.Config == nil || img.Config.Config.User != "berth" || img.Config.Architecture != "amd64" || len(img.Config.History) != 3 {
		t.Errorf("config: %+v", img.Config)
	}
	if img.Size == 0 {
		t.Error("size 0")
	}

	// Every way the CRI names an image finds it.
	for _, name := range []string{id, strings.TrimPrefix(id, "sha256:"), strings.TrimPrefix(id, "sha256:")[:12], ref, repoDigest} {
		got, err := e.store.ResolveImage(ctx, name)
		if err != nil || got.ID != id {
			t.Errorf("ResolveImage(%s): %v, %v", name, got, err)
		}
	}

	// Pull by digest: same image, with the digest as a name.
	img2, err := e.store.Pull(ctx, repoDigest, Auth{})
	if err != nil {
		t.Fatal(err)
	}
	if img2.ID != id || countImages(t, e.store) != 1 {
		t.Fatalf("by digest: %s, %d images", img2.ID, countImages(t, e.store))
	}
}

func TestPullMultiArchPicksAmd64(t *testing.T) {
	e := newEnv(t, envOptions{})
	idx, amd64, arm64, err := testimage.MultiArch(testimage.Spec{Name: "multi"})
	if err != nil {
		t.Fatal(err)
	}
	_, ref := e.reg.PushIndex(t, "multi:1", idx)
	img, err := e.store.Pull(t.Context(), ref, Auth{})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := testimage.ConfigDigest(amd64)
	other, _ := testimage.ConfigDigest(arm64)
	if img.ID != want || img.Config.Architecture != "amd64" {
		t.Fatalf("pulled %s (%s), want amd64 %s (arm64 is %s)", img.ID, img.Config.Architecture, want, other)
	}
}

func TestPullShortNames(t *testing.T) {
	var host string
	e := newEnv(t, envOptions{conf: func(h string) testimage.ConfOptions {
		host = h
		return testimage.ConfOptions{
			Insecure: []string{h},
			Search:   []string{h},
			Aliases:  map[string]string{"nick": h + "/aliased"},
		}
	}})
	_, _, id := e.push(t, "short:latest", testimage.Spec{Name: "short"})
	_, _, aliasID := e.push(t, "aliased:2", testimage.Spec{Name: "aliased"})
	ctx := t.Context()

	img, err := e.store.Pull(ctx, "short", Auth{})
	if err != nil {
		t.Fatal(err)
	}
	if img.ID != id || !slices.Contains(img.RepoTags, host+"/short:latest") {
		t.Fatalf("short name: %+v", img)
	}
	// The short name finds the local image too.
	if got, err := e.store.ResolveImage(ctx, "short"); err != nil || got.ID != id {
		t.Fatalf("ResolveImage(short): %v %v", got, err)
	}
	img, err = e.store.Pull(ctx, "nick:2", Auth{})
	if err != nil {
		t.Fatal(err)
	}
	if img.ID != aliasID {
		t.Fatalf("alias: %s want %s", img.ID, aliasID)
	}
}

func TestPullDockerHubThroughRewrite(t *testing.T) {
	// No search registries: a short name is Docker Hub's, which
	// registries.conf sends to the local registry.
	e := newEnv(t, envOptions{conf: func(h string) testimage.ConfOptions {
		return testimage.ConfOptions{Insecure: []string{h}, Rewrites: map[string]string{"docker.io": h}}
	}})
	_, _, id := e.push(t, "library/busybox:latest", testimage.Spec{Name: "hub"})
	img, err := e.store.Pull(t.Context(), "busybox", Auth{})
	if err != nil {
		t.Fatal(err)
	}
	if img.ID != id || !slices.Contains(img.RepoTags, "docker.io/library/busybox:latest") {
		t.Fatalf("got %+v", img)
	}
	if e.reg.Requests("GET", "/v2/library/busybox/manifests/latest") == 0 {
		t.Fatalf("the local registry was not asked: %v", e.reg.AllRequests())
	}
	for _, name := range []string{"busybox", "busybox:latest", "docker.io/library/busybox", "library/busybox:latest"} {
		if got, err := e.store.ResolveImage(t.Context(), name); err != nil || got.ID != id {
			t.Errorf("ResolveImage(%s): %v", name, err)
		}
	}
}

func TestPullErrors(t *testing.T) {
	e := newEnv(t, envOptions{
		registry: testimage.RegistryOptions{Username: "u", Password: "p"},
		conf: func(h string) testimage.ConfOptions {
			return testimage.ConfOptions{Insecure: []string{h}, Blocked: []string{"blocked.example"}}
		},
	})
	_, ref, id := e.push(t, "private:1", testimage.Spec{Name: "private"})
	ctx := t.Context()

	for _, c := range []struct {
		ref  string
		auth Auth
		kind errdefs.Kind
		text string
	}{
		{"UPPER/case:x", Auth{}, errdefs.KindInvalid, "malformed"},
		{"a:b:c", Auth{}, errdefs.KindInvalid, "malformed"},
		{"", Auth{}, errdefs.KindInvalid, "empty"},
		{id, Auth{}, errdefs.KindInvalid, "image ID"},
		{"oci:/x", Auth{}, errdefs.KindInvalid, ""},
		{ref, Auth{}, errdefs.KindUnauthenticated, "bad credentials for " + e.reg.Host},
		{ref, Auth{Username: "u", Password: "wrong"}, errdefs.KindUnauthenticated, "bad credentials"},
		{e.reg.Host + "/missing:1", Auth{Username: "u", Password: "p"}, errdefs.KindNotFound, "not found"},
		{e.reg.Host + "/private:nosuchtag", Auth{Username: "u", Password: "p"}, errdefs.KindNotFound, "not found"},
		{"blocked.example/x:1", Auth{}, errdefs.KindPermissionDenied, "blocked"},
		{"127.0.0.1:1/x:1", Auth{}, errdefs.KindUnavailable, "unreachable"},
	} {
		_, err := e.store.Pull(ctx, c.ref, c.auth)
		if err == nil || errdefs.KindOf(err) != c.kind || !strings.Contains(err.Error(), c.text) {
			t.Errorf("Pull(%q): kind %v, err %v; want %v containing %q", c.ref, errdefs.KindOf(err), err, c.kind, c.text)
		}
	}
	if n := countImages(t, e.store); n != 0 {
		t.Fatalf("%d images after failed pulls", n)
	}
	// Good credentials, in either form.
	if _, err := e.store.Pull(ctx, ref, Auth{Username: "u", Password: "p"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Pull(ctx, ref, Auth{Auth: "dTpw"}); err != nil { // base64("u:p")
		t.Fatal(err)
	}
	if _, err := e.store.Pull(ctx, ref, Auth{Auth: "!!"}); !errdefs.IsInvalid(err) {
		t.Fatalf("bad auth field: %v", err)
	}
	e.reg.Stop()
	_, err := e.store.Pull(ctx, ref, Auth{Username: "u", Password: "p"})
	if errdefs.KindOf(err) != errdefs.KindUnavailable {
		t.Fatalf("registry down: %v (%v)", err, errdefs.KindOf(err))
	}
}

func TestConcurrentPullsShareOneDownload(t *testing.T) {
	e := newEnv(t, envOptions{})
	img, err := testimage.Busybox(testimage.Spec{Name: "shared"})
	if err != nil {
		t.Fatal(err)
	}
	_, ref := e.reg.Push(t, "shared:1", img)
	e.reg.ResetRequests()
	// Slow enough that all ten callers arrive while the first downloads.
	e.reg.SetBlobDelay(time.Second)
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = e.store.Pull(t.Context(), ref, Auth{})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	layers, _ := testimage.LayerDigests(img)
	for _, l := range layers {
		if n := e.reg.BlobGets(l); n != 1 {
			t.Errorf("layer %s fetched %d times", l, n)
		}
	}
}

func TestCancelledCallerLeavesSharedPullRunning(t *testing.T) {
	e := newEnv(t, envOptions{})
	_, ref, id := e.push(t, "keep:1", testimage.Spec{Name: "keep"})
	e.reg.SetBlobDelay(2 * time.Second)
	ctx1, cancel1 := context.WithCancel(t.Context())
	first := make(chan error, 1)
	go func() { _, err := e.store.Pull(ctx1, ref, Auth{}); first <- err }()
	time.Sleep(300 * time.Millisecond) // let the first start the download
	second := make(chan error, 1)
	var got *Image
	go func() {
		var err error
		got, err = e.store.Pull(t.Context(), ref, Auth{})
		second <- err
	}()
	time.Sleep(300 * time.Millisecond)
	cancel1()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v", err)
	}
	if err := <-second; err != nil {
		t.Fatalf("second caller failed when the first cancelled: %v", err)
	}
	if got.ID != id {
		t.Fatalf("got %s", got.ID)
	}
}

func TestCancelledPullLeavesNothing(t *testing.T) {
	e := newEnv(t, envOptions{})
	// Several layers, so some are committed before the cancel.
	big, err := testimage.Big("cancel", 4<<20, 4)
	if err != nil {
		t.Fatal(err)
	}
	_, ref := e.reg.Push(t, "cancel:1", big)
	e.reg.SetBlobDelay(1500 * time.Millisecond)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Second)
	defer cancel()
	_, err = e.store.Pull(ctx, ref, Auth{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("pull: %v", err)
	}
	// The shared download notices the cancel and cleans up as it ends.
	deadline := time.Now().Add(30 * time.Second)
	for {
		e.store.pullMu.Lock()
		active := e.store.active
		e.store.pullMu.Unlock()
		if active == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("download still running 30s after its only caller left")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n, l := countImages(t, e.store), countLayers(t, e.store); n != 0 || l != 0 {
		t.Fatalf("after a cancelled pull: %d images, %d layers", n, l)
	}
	// And a later pull works.
	e.reg.SetBlobDelay(0)
	if _, err := e.store.Pull(t.Context(), ref, Auth{}); err != nil {
		t.Fatal(err)
	}
}

func TestPullRetriesTransientErrors(t *testing.T) {
	e := newEnv(t, envOptions{store: func(o *Options) { o.PullRetries = 2 }})
	e.reg.Stop()
	start := time.Now()
	_, err := e.store.Pull(t.Context(), e.reg.Ref("x:1"), Auth{})
	if errdefs.KindOf(err) != errdefs.KindUnavailable {
		t.Fatalf("%v", err)
	}
	// Two retries with 10ms and 20ms backoff happened (no upper bound
	// asserted: the machine may be slow).
	if time.Since(start) < 30*time.Millisecond {
		t.Fatalf("no backoff: %s", time.Since(start))
	}
}

func TestPullTokenAuth(t *testing.T) {
	e := newEnv(t, envOptions{registry: testimage.RegistryOptions{TokenAuth: true, Username: "u", Password: "p", IdentityToken: "refresh-me"}})
	_, ref, id := e.push(t, "tok:1", testimage.Spec{Name: "tok"})
	ctx := t.Context()
	for name, a := range map[string]Auth{
		"password exchanged for a token": {Username: "u", Password: "p"},
		"identity token":                 {IdentityToken: "refresh-me"},
		"registry token":                 {RegistryToken: e.reg.Token()},
	} {
		img, err := e.store.Pull(ctx, ref, a)
		if err != nil || img.ID != id {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, a := range map[string]Auth{
		"none":               {},
		"bad password":       {Username: "u", Password: "x"},
		"bad identity token": {IdentityToken: "nope"},
		"bad registry token": {RegistryToken: "nope"},
	} {
		if _, err := e.store.Pull(ctx, ref, a); !errdefs.Is(err, errdefs.KindUnauthenticated) {
			t.Errorf("%s: %v (%v), want Unauthenticated", name, err, errdefs.KindOf(err))
		}
	}
}

func TestSignaturePolicy(t *testing.T) {
	dir := t.TempDir()
	reject := filepath.Join(dir, "reject.json")
	os.WriteFile(reject, []byte(`{"default":[{"type":"reject"}]}`), 0o644)
	e := newEnv(t, envOptions{store: func(o *Options) { o.SignaturePolicy = reject }})
	_, ref, _ := e.push(t, "signed:1", testimage.Spec{Name: "signed"})
	if _, err := e.store.Pull(t.Context(), ref, Auth{}); !errdefs.Is(err, errdefs.KindPermissionDenied) {
		t.Fatalf("pull under a rejecting policy: %v (%v)", err, errdefs.KindOf(err))
	}
	if n := countImages(t, e.store); n != 0 {
		t.Fatalf("%d images", n)
	}
	// The policy is read at each pull: accepting it now lets the pull through.
	os.WriteFile(reject, []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`), 0o644)
	if _, err := e.store.Pull(t.Context(), ref, Auth{}); err != nil {
		t.Fatal(err)
	}
	// A broken policy stops Open.
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{`), 0o644)
	if _, err := Open(t.Context(), Options{GraphRoot: filepath.Join(dir, "g"), RunRoot: filepath.Join(dir, "r"), SignaturePolicy: bad}); err == nil {
		t.Fatal("Open accepted a broken policy")
	}
	if _, err := Open(t.Context(), Options{GraphRoot: filepath.Join(dir, "g"), RunRoot: filepath.Join(dir, "r"), RegistriesConf: filepath.Join(dir, "missing.conf")}); err == nil {
		t.Fatal("Open accepted a missing registries.conf")
	}
}

func TestPullThroughMirror(t *testing.T) {
	// The image is only on the mirror; the prefix's own location is a
	// second local registry that is down. The mirror answers first.
	origin := testimage.StartRegistry(t, testimage.RegistryOptions{})
	e := newEnv(t, envOptions{conf: func(mirror string) testimage.ConfOptions {
		return testimage.ConfOptions{
			Insecure: []string{mirror, origin.Host},
			Mirrors:  map[string][]string{origin.Host: {mirror}},
		}
	}})
	origin.Stop()
	_, _, id := e.push(t, "mirrored:1", testimage.Spec{Name: "mirrored"})
	img, err := e.store.Pull(t.Context(), origin.Ref("mirrored:1"), Auth{})
	if err != nil {
		t.Fatal(err)
	}
	if img.ID != id || !slices.Contains(img.RepoTags, origin.Ref("mirrored:1")) {
		t.Fatalf("%+v", img)
	}
}

// Credentials for one registry never reach another: a short name tried in
// several unqualified-search registries sends them only to the registry
// AuthConfig.server_address names (the first search registry here is
// someone else's, asking for credentials to collect them).
func TestPullCredentialsOnlyToTheirRegistry(t *testing.T) {
	other := testimage.StartRegistry(t, testimage.RegistryOptions{Username: "u", Password: "p"})
	e := newEnv(t, envOptions{
		registry: testimage.RegistryOptions{Username: "u", Password: "p"},
		conf: func(h string) testimage.ConfOptions {
			return testimage.ConfOptions{Insecure: []string{other.Host, h}, Search: []string{other.Host, h}, ShortNameMode: "permissive"}
		},
	})
	_, _, id := e.push(t, "private:1", testimage.Spec{Name: "private"})
	other.ResetRequests()
	img, err := e.store.Pull(t.Context(), "private:1", Auth{Username: "u", Password: "p", ServerAddress: "http://" + e.reg.Host + "/v2/"})
	if err != nil || img.ID != id {
		t.Fatalf("pull with credentials for %s: %v", e.reg.Host, err)
	}
	if len(other.AllRequests()) == 0 {
		t.Fatal("the other search registry was not tried first: the test proves nothing")
	}
	if n := other.RequestsWithCredentials(); n != 0 {
		t.Fatalf("the other registry got credentials in %d requests: %v", n, other.AllRequests())
	}
	// No server address and several candidates: nobody gets them.
	other.ResetRequests()
	e.store.Pull(t.Context(), "private:2", Auth{Username: "u", Password: "p"})
	if n := other.RequestsWithCredentials(); n != 0 {
		t.Fatalf("without a server address the other registry got credentials in %d requests: %v", n, other.AllRequests())
	}
}

func TestAuthForRegistry(t *testing.T) {
	a := Auth{Username: "u", Password: "p", ServerAddress: "https://index.docker.io/v1/"}
	for host, want := range map[string]bool{"docker.io": true, "quay.io": false, "docker.io.evil.com": false} {
		if got := a.forRegistry(host, 2) == a; got != want {
			t.Errorf("credentials for %s: %v, want %v", host, got, want)
		}
	}
	g := Auth{Password: "p", ServerAddress: "*.gcr.io"}
	if g.forRegistry("us.gcr.io", 3) != g || g.forRegistry("gcr.io.evil", 3) != (Auth{}) {
		t.Error("glob server address")
	}
	n := Auth{Password: "p"}
	if n.forRegistry("any", 1) != n || n.forRegistry("any", 2) != (Auth{}) {
		t.Error("no server address: one candidate gets them, several do not")
	}
}
