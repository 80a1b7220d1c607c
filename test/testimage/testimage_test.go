package testimage

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestBusyboxImage(t *testing.T) {
	img, err := Busybox(Spec{Name: "x", Cmd: []string{"sleep", "1"}, Env: []string{"A=b"}, User: "berth",
		Files: []File{{Path: "/opt/app/hello", Content: "hi\n", Mode: 0o755}}})
	if err != nil {
		t.Fatal(err)
	}
	ls, err := img.Layers()
	if err != nil || len(ls) != 3 {
		t.Fatalf("layers: %d %v", len(ls), err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Architecture != "amd64" || cf.Config.User != "berth" || cf.Config.Env[0] != DefaultPath || cf.Config.Env[1] != "A=b" {
		t.Fatalf("config: %+v", cf.Config)
	}
	files := map[string]*tar.Header{}
	tr := tar.NewReader(mutate.Extract(img))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimSuffix(h.Name, "/")] = h
	}
	for _, p := range []string{"bin/busybox", "bin/sh", "bin/sleep", "etc/passwd", "etc/berth-image", "opt/app/hello", "opt/app"} {
		if files[p] == nil {
			t.Errorf("image lacks %s", p)
		}
	}
	if h := files["home/berth"]; h == nil || h.Uid != 1000 {
		t.Errorf("home/berth: %+v", h)
	}
	// Reproducible: the same spec gives the same image.
	again, _ := Busybox(Spec{Name: "x", Cmd: []string{"sleep", "1"}, Env: []string{"A=b"}, User: "berth",
		Files: []File{{Path: "/opt/app/hello", Content: "hi\n", Mode: 0o755}}})
	d1, _ := img.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Fatalf("digests differ: %s %s", d1, d2)
	}
}

func TestRegistryPushPullCount(t *testing.T) {
	reg := StartRegistry(t, RegistryOptions{})
	idx, amd, _, err := MultiArch(Spec{Name: "multi"})
	if err != nil {
		t.Fatal(err)
	}
	digest, ref := reg.PushIndex(t, "multi:1", idx)
	if !strings.HasPrefix(ref, "127.0.0.1:") || !strings.HasPrefix(digest, "sha256:") {
		t.Fatalf("ref %s digest %s", ref, digest)
	}
	reg.ResetRequests()
	nref, _ := name.ParseReference(ref, name.Insecure)
	got, err := remote.Image(nref, remote.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"}))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := amd.Digest()
	if d, _ := got.Digest(); d != want {
		t.Fatalf("platform pick: %s, want %s", d, want)
	}
	ls, _ := LayerDigests(amd)
	l, _ := got.LayerByDigest(v1.Hash{})
	_ = l
	rl, _ := got.Layers()
	rc, err := rl[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, rc)
	rc.Close()
	if n := reg.BlobGets(ls[0]); n != 1 {
		t.Fatalf("blob gets of %s: %d\n%v", ls[0], n, reg.AllRequests())
	}
	reg.Stop()
	if _, err := remote.Image(nref); err == nil {
		t.Fatal("pull from a stopped registry succeeded")
	}
}

func TestRegistryAuthAndDelay(t *testing.T) {
	reg := StartRegistry(t, RegistryOptions{Username: "u", Password: "p"})
	img, err := Busybox(Spec{Name: "auth"})
	if err != nil {
		t.Fatal(err)
	}
	_, ref := reg.Push(t, "auth:1", img)
	nref, _ := name.ParseReference(ref, name.Insecure)
	if _, err := remote.Image(nref); err == nil {
		t.Fatal("anonymous pull succeeded")
	}
	if _, err := remote.Image(nref, remote.WithAuth(&authn.Basic{Username: "u", Password: "wrong"})); err == nil {
		t.Fatal("pull with a wrong password succeeded")
	}
	got, err := remote.Image(nref, remote.WithAuth(&authn.Basic{Username: "u", Password: "p"}))
	if err != nil {
		t.Fatal(err)
	}
	// A slow blob can be cancelled midway.
	reg.SetBlobDelay(time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	ls, _ := img.Layers()
	d, _ := ls[0].Digest()
	req, _ := http.NewRequestWithContext(ctx, "GET", reg.URL+"/v2/auth/blobs/"+d.String(), nil)
	req.SetBasicAuth("u", "p")
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow blob: %v", err)
	}
	_ = got
}

func TestRegistriesConf(t *testing.T) {
	s := RegistriesConf(ConfOptions{Insecure: []string{"127.0.0.1:5000"}, Search: []string{"127.0.0.1:5000"},
		Rewrites: map[string]string{"docker.io": "127.0.0.1:5000"}, Aliases: map[string]string{"bb": "127.0.0.1:5000/busybox"}})
	for _, want := range []string{`unqualified-search-registries = ["127.0.0.1:5000"]`, `prefix = "docker.io"
location = "127.0.0.1:5000"
insecure = true`, `"bb" = "127.0.0.1:5000/busybox"`} {
		if !strings.Contains(s, want) {
			t.Errorf("registries.conf lacks %q:\n%s", want, s)
		}
	}
}

func BenchmarkBig(b *testing.B) {
	for b.Loop() {
		if _, err := Big("big", 8<<20, 2); err != nil {
			b.Fatal(err)
		}
	}
}

func TestDaemonTOML(t *testing.T) {
	reg := StartRegistry(t, RegistryOptions{})
	s := reg.DaemonTOML(t)
	i := strings.Index(s, `registries_conf = "`)
	if !strings.HasPrefix(strings.TrimSpace(s), "[image]") || i < 0 {
		t.Fatalf("%q", s)
	}
	path := strings.TrimSuffix(strings.TrimSpace(s[i+len(`registries_conf = "`):]), `"`)
	b, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(b), `location = "`+reg.Host+`"`) || !strings.Contains(string(b), "insecure = true") {
		t.Fatalf("%s: %q %v", path, b, err)
	}
}
