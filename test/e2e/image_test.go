package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/test/testimage"
)

func TestImagePullByTagDigestShortNameAndMirror(t *testing.T) {
	var host string
	e := startImageEnv(t, imageEnvOptions{conf: func(h string) testimage.ConfOptions {
		host = h
		return testimage.ConfOptions{
			Insecure: []string{h},
			Search:   []string{h},
			// docker.io is served by the local registry, with no
			// fallback to the real one.
			Rewrites: map[string]string{"docker.io": h},
		}
	}})
	digest, ref, id := e.push(t, "app:1", testimage.Spec{Name: "app"})

	if got := e.mustPull(t, ref); got != id {
		t.Fatalf("pull by tag answered %s, want the image ID %s", got, id)
	}
	byDigest := host + "/app@" + digest
	if got := e.mustPull(t, byDigest); got != id {
		t.Fatalf("pull by digest answered %s, want %s", got, id)
	}
	img := e.status(t, byDigest)
	if img == nil || !slices.Contains(img.RepoTags, ref) || !slices.Contains(img.RepoDigests, byDigest) {
		t.Fatalf("status by digest: %+v", img)
	}

	// A short name resolves through the unqualified-search registry.
	_, _, shortID := e.push(t, "shorty:latest", testimage.Spec{Name: "shorty"})
	if got := e.mustPull(t, "shorty"); got != shortID {
		t.Fatalf("short name: %s, want %s", got, shortID)
	}
	if img := e.status(t, "shorty"); img == nil || !slices.Contains(img.RepoTags, host+"/shorty:latest") {
		t.Fatalf("status of the short name: %+v", img)
	}

	// A docker.io reference comes from the mirror location.
	_, _, hubID := e.push(t, "library/hubimg:3", testimage.Spec{Name: "hub"})
	if got := e.mustPull(t, "docker.io/library/hubimg:3"); got != hubID {
		t.Fatalf("through the mirror: %s, want %s", got, hubID)
	}
	if e.reg.Requests("GET", "/v2/library/hubimg/manifests/3") == 0 {
		t.Fatalf("the mirror was not asked: %v", e.reg.AllRequests())
	}
}

func TestImageShortNameDefaultsToDockerHub(t *testing.T) {
	// No search registries: "busybox" means docker.io/library/busybox:latest,
	// which registries.conf sends to the local registry.
	e := startImageEnv(t, imageEnvOptions{conf: func(h string) testimage.ConfOptions {
		return testimage.ConfOptions{Insecure: []string{h}, Rewrites: map[string]string{"docker.io": h}}
	}})
	_, _, id := e.push(t, "library/busybox:latest", testimage.Spec{Name: "bb"})
	if got := e.mustPull(t, "busybox"); got != id {
		t.Fatalf("pull busybox: %s, want %s", got, id)
	}
	img := e.status(t, "busybox")
	if img == nil || !slices.Contains(img.RepoTags, "docker.io/library/busybox:latest") {
		t.Fatalf("status: %+v", img)
	}
	if e.status(t, "docker.io/library/busybox:latest") == nil {
		t.Fatal("the normalised name does not find the image")
	}
}

func TestImageMultiArchPicksAmd64(t *testing.T) {
	e := startImageEnv(t, imageEnvOptions{})
	idx, amd64, _, err := testimage.MultiArch(testimage.Spec{Name: "multi"})
	if err != nil {
		t.Fatal(err)
	}
	idxDigest, ref := e.reg.PushIndex(t, "multi:1", idx)
	want, _ := testimage.ConfigDigest(amd64)
	if got := e.mustPull(t, ref); got != want {
		t.Fatalf("pulled %s, want the amd64 image %s", got, want)
	}
	resp, err := e.d.Image.ImageStatus(e.d.Ctx(t), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		ImageSpec struct {
			Architecture string `json:"architecture"`
		} `json:"imageSpec"`
	}
	if err := json.Unmarshal([]byte(resp.Info["info"]), &info); err != nil || info.ImageSpec.Architecture != "amd64" {
		t.Fatalf("verbose info %q: %v", resp.Info["info"], err)
	}
	// The index digest names the image too.
	if !slices.Contains(resp.Image.RepoDigests, e.reg.Host+"/multi@"+idxDigest) {
		t.Errorf("repo digests %v lack the index digest", resp.Image.RepoDigests)
	}
}

func TestImageConcurrentPullsFetchEachBlobOnce(t *testing.T) {
	e := startImageEnv(t, imageEnvOptions{})
	img, err := testimage.Busybox(testimage.Spec{Name: "ten"})
	if err != nil {
		t.Fatal(err)
	}
	_, ref := e.reg.Push(t, "ten:1", img)
	e.reg.ResetRequests()
	// Slow blobs keep the first download running while the rest arrive.
	e.reg.SetBlobDelay(time.Second)
	var wg sync.WaitGroup
	ids := make([]string, 10)
	errs := make([]error, 10)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i], errs[i] = e.pull(t, ref, nil)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	want, _ := testimage.ConfigDigest(img)
	for _, id := range ids {
		if id != want {
			t.Fatalf("ids %v, want all %s", ids, want)
		}
	}
	layers, _ := testimage.LayerDigests(img)
	cfg, _ := img.ConfigName()
	for _, blob := range append(layers, cfg.String()) {
		if n := e.reg.BlobGets(blob); n != 1 {
			t.Errorf("blob %s fetched %d times by ten concurrent pulls, want 1", blob, n)
		}
	}
}

func TestImageListStatusRemove(t *testing.T) {
	e := startImageEnv(t, imageEnvOptions{toml: ""})
	ctx := e.d.Ctx(t)
	digest, ref1, id := e.push(t, "names:1", testimage.Spec{Name: "n", User: "berth", Env: []string{"K=v"}, Cmd: []string{"sleep", "9"}})
	_, ref2, _ := e.push(t, "names:2", testimage.Spec{Name: "n", User: "berth", Env: []string{"K=v"}, Cmd: []string{"sleep", "9"}})
	_, refU, idU := e.push(t, "numeric:1", testimage.Spec{Name: "u", User: "1000:1000"})
	for _, r := range []string{ref1, ref2, refU} {
		e.mustPull(t, r)
	}

	list := e.listImages(t)
	if len(list) != 2 {
		t.Fatalf("%d images listed, want 2", len(list))
	}
	filtered, err := e.d.Image.ListImages(ctx, &runtimeapi.ListImagesRequest{Filter: &runtimeapi.ImageFilter{Image: &runtimeapi.ImageSpec{Image: refU}}})
	if err != nil || len(filtered.Images) != 1 || filtered.Images[0].Id != idU {
		t.Fatalf("filtered list: %v %v", filtered, err)
	}

	img := e.status(t, ref1)
	if img == nil || img.Id != id || img.Username != "berth" || img.Uid != nil || img.Size == 0 || img.Pinned ||
		!slices.Equal(img.RepoTags, []string{ref1, ref2}) || !slices.Contains(img.RepoDigests, e.reg.Host+"/names@"+digest) {
		t.Fatalf("status: %+v", img)
	}
	if u := e.status(t, refU); u == nil || u.Uid.GetValue() != 1000 || u.Username != "" {
		t.Fatalf("numeric user: %+v", u)
	}
	resp, err := e.d.Image.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: id}, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		ImageSpec struct {
			Config struct {
				Env []string `json:"Env"`
				Cmd []string `json:"Cmd"`
			} `json:"config"`
			History []struct {
				CreatedBy string `json:"created_by"`
			} `json:"history"`
		} `json:"imageSpec"`
	}
	if err := json.Unmarshal([]byte(resp.Info["info"]), &info); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(info.ImageSpec.Config.Env, "K=v") || len(info.ImageSpec.History) != 3 || info.ImageSpec.Config.Cmd[0] != "sleep" {
		t.Fatalf("verbose info: %s", resp.Info["info"])
	}
	if s := e.status(t, e.reg.Host+"/absent:1"); s != nil {
		t.Fatalf("status of an absent image: %+v", s)
	}

	// Removing one name of two leaves the image.
	if err := e.remove(t, ref1); err != nil {
		t.Fatal(err)
	}
	if img := e.status(t, id); img == nil || !slices.Equal(img.RepoTags, []string{ref2}) {
		t.Fatalf("after removing %s: %+v", ref1, img)
	}
	if e.status(t, ref1) != nil {
		t.Fatal("removed name still resolves")
	}
	// By digest: the last name of that repository, so the image goes.
	if err := e.remove(t, e.reg.Host+"/names@"+digest); err != nil {
		t.Fatal(err)
	}
	if e.status(t, id) != nil {
		t.Fatal("image still present after removing by digest")
	}
	// By ID.
	if err := e.remove(t, idU); err != nil {
		t.Fatal(err)
	}
	if e.status(t, refU) != nil {
		t.Fatal("image still present after removing by ID")
	}
	// Unknown images: success.
	for _, r := range []string{idU, "never/pulled:1", e.reg.Host + "/names@" + digest} {
		if err := e.remove(t, r); err != nil {
			t.Errorf("remove unknown %s: %v", r, err)
		}
	}
	if _, err := e.d.Image.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("remove without an image: %v", err)
	}
	if n := e.storeLayers(t); n != 0 {
		t.Fatalf("%d layers left after removing every image", n)
	}
}

func TestImagePullCredentials(t *testing.T) {
	e := startImageEnv(t, imageEnvOptions{registry: testimage.RegistryOptions{Username: "kube", Password: "s3cret"}})
	_, ref, id := e.push(t, "private:1", testimage.Spec{Name: "private"})
	for _, auth := range []*runtimeapi.AuthConfig{nil, {Username: "kube", Password: "wrong"}} {
		_, err := e.pull(t, ref, auth)
		if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "bad credentials for "+e.reg.Host) {
			t.Errorf("pull with %v: %v, want Unauthenticated saying bad credentials", auth, err)
		}
	}
	if len(e.listImages(t)) != 0 {
		t.Fatal("a refused pull left an image")
	}
	if got, err := e.pull(t, ref, &runtimeapi.AuthConfig{Username: "kube", Password: "s3cret"}); err != nil || got != id {
		t.Fatalf("pull with good credentials: %s %v", got, err)
	}
	// The docker config.json form: base64("kube:s3cret").
	if _, err := e.pull(t, ref, &runtimeapi.AuthConfig{Auth: "a3ViZTpzM2NyZXQ="}); err != nil {
		t.Fatalf("pull with the auth field: %v", err)
	}
	// The password never reaches the log, even at debug level.
	if strings.Contains(e.d.Log(), "s3cret") {
		t.Fatal("berthd logged the registry password")
	}
}

func TestImagePullErrors(t *testing.T) {
	e := startImageEnv(t, imageEnvOptions{})
	_, ref, _ := e.push(t, "there:1", testimage.Spec{Name: "there"})
	for _, c := range []struct {
		ref  string
		code codes.Code
	}{
		{"", codes.InvalidArgument},
		{"Not/A:Valid:Ref", codes.InvalidArgument},
		{"busybox@sha256:123", codes.InvalidArgument},
		{"sha256:" + strings.Repeat("a", 64), codes.InvalidArgument},
		{e.reg.Host + "/there:notatag", codes.NotFound},
		{e.reg.Host + "/nothere:1", codes.NotFound},
	} {
		if _, err := e.pull(t, c.ref, nil); status.Code(err) != c.code {
			t.Errorf("pull %q: %v, want %v", c.ref, err, c.code)
		}
	}
	e.reg.Stop()
	_, err := e.pull(t, ref, nil)
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("registry down: %v, want Unavailable", err)
	}
	if len(e.listImages(t)) != 0 {
		t.Fatal("failed pulls left images")
	}
}

func TestImagePullCancelledLeavesNothing(t *testing.T) {
	e := startImageEnv(t, imageEnvOptions{})
	big, err := testimage.Big("cancel", 8<<20, 4)
	if err != nil {
		t.Fatal(err)
	}
	_, ref := e.reg.Push(t, "cancel:1", big)
	e.reg.SetBlobDelay(2 * time.Second)
	ctx, cancel := context.WithCancel(e.d.Ctx(t))
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := e.d.Image.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
		done <- err
	}()
	// Cancel midway: once some layers are in the store.
	e.waitLayers(t, 1)
	cancel()
	if err := <-done; status.Code(err) != codes.Canceled {
		t.Fatalf("pull: %v, want Canceled", err)
	}
	e.waitEmptyStore(t)
	// And the same pull works afterwards.
	e.reg.SetBlobDelay(0)
	e.mustPull(t, ref)
}

func TestImagesSurviveRestartAndCrash(t *testing.T) {
	e := startImageEnv(t, imageEnvOptions{})
	_, ref, id := e.push(t, "keep:1", testimage.Spec{Name: "keep"})
	e.mustPull(t, ref)
	if err := e.d.Stop(t); err != nil {
		t.Fatal(err)
	}
	e.d.Restart(t)
	if img := e.status(t, ref); img == nil || img.Id != id {
		t.Fatalf("after restart: %+v", img)
	}
	baseline := e.storeLayers(t)

	// SIGKILL in the middle of a pull: after the restart the image is
	// absent and its half-pulled layers are gone.
	big, err := testimage.Big("crash", 8<<20, 4)
	if err != nil {
		t.Fatal(err)
	}
	_, bigRef := e.reg.Push(t, "crash:1", big)
	e.reg.SetBlobDelay(3 * time.Second)
	go e.pull(t, bigRef, nil)
	e.waitLayers(t, baseline+1) // some of its layers are committed
	e.d.Kill(t)
	e.reg.SetBlobDelay(0)
	e.d.Restart(t)
	if img := e.status(t, bigRef); img != nil {
		t.Fatalf("half-pulled image present after a crash: %+v", img)
	}
	if img := e.status(t, ref); img == nil {
		t.Fatal("the complete image was lost in the crash")
	}
	if n := e.storeLayers(t); n != baseline {
		t.Fatalf("%d layers after crash and restart, want %d (the crash's leftovers removed)", n, baseline)
	}
}

func TestImageFsInfo(t *testing.T) {
	e := startImageEnv(t, imageEnvOptions{})
	_, ref, _ := e.push(t, "fs:1", testimage.Spec{Name: "fs"})
	e.mustPull(t, ref)
	resp, err := e.d.Image.ImageFsInfo(e.d.Ctx(t), &runtimeapi.ImageFsInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.ImageFilesystems) != 1 || len(resp.ContainerFilesystems) != 1 {
		t.Fatalf("%+v", resp)
	}
	fs := resp.ImageFilesystems[0]
	// busybox alone is over a megabyte unpacked.
	if fs.UsedBytes.GetValue() < 1<<20 || fs.InodesUsed.GetValue() < 100 || !strings.HasPrefix(fs.FsId.GetMountpoint(), e.d.Root) || fs.Timestamp == 0 {
		t.Fatalf("image filesystem: %+v", fs)
	}
}

func TestBerthctlImageCommands(t *testing.T) {
	e := startImageEnv(t, imageEnvOptions{registry: testimage.RegistryOptions{Username: "u", Password: "p"}})
	_, ref, id := e.push(t, "ctl:1", testimage.Spec{Name: "ctl", Cmd: []string{"echo", "hi"}})
	if _, err := e.berthctl(t, "pull", ref); err == nil || !strings.Contains(err.Error(), "bad credentials") {
		t.Fatalf("pull without credentials: %v", err)
	}
	out, err := e.berthctl(t, "pull", "-creds", "u:p", ref)
	if err != nil || !strings.Contains(out, id) {
		t.Fatalf("pull: %q %v", out, err)
	}
	out, err = e.berthctl(t, "images")
	short := strings.TrimPrefix(id, "sha256:")[:13]
	if err != nil || !strings.Contains(out, e.reg.Host+"/ctl") || !strings.Contains(out, short) {
		t.Fatalf("images: %q %v", out, err)
	}
	out, err = e.berthctl(t, "images", "-q")
	if err != nil || strings.TrimSpace(out) != id {
		t.Fatalf("images -q: %q %v", out, err)
	}
	out, err = e.berthctl(t, "inspecti", ref)
	if err != nil || !strings.Contains(out, "echo hi") || !strings.Contains(out, "linux/amd64") {
		t.Fatalf("inspecti: %q %v", out, err)
	}
	out, err = e.berthctl(t, "-o", "json", "inspecti", ref)
	var st struct {
		Image struct {
			ID string `json:"id"`
		} `json:"image"`
	}
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || st.Image.ID != id {
		t.Fatalf("inspecti -o json: %q %v", out, err)
	}
	out, err = e.berthctl(t, "imagefsinfo")
	if err != nil || !strings.Contains(out, "image") || !strings.Contains(out, e.d.Root) {
		t.Fatalf("imagefsinfo: %q %v", out, err)
	}
	if out, err = e.berthctl(t, "rmi", ref); err != nil || !strings.Contains(out, "Deleted") {
		t.Fatalf("rmi: %q %v", out, err)
	}
	if len(e.listImages(t)) != 0 {
		t.Fatal("rmi left the image")
	}
}

func TestImagePullTokenCredentials(t *testing.T) {
	e := startImageEnv(t, imageEnvOptions{registry: testimage.RegistryOptions{TokenAuth: true, Username: "kube", Password: "pw", IdentityToken: "refresh-tok"}})
	_, ref, id := e.push(t, "tok:1", testimage.Spec{Name: "tok"})
	for _, auth := range []*runtimeapi.AuthConfig{
		{Username: "kube", Password: "pw"},                // exchanged for a bearer token
		{IdentityToken: "refresh-tok"},                    // OAuth2 refresh token
		{RegistryToken: e.reg.Token()},                    // bearer token as is
		{ServerAddress: e.reg.Host, Auth: "a3ViZTpwdw=="}, // base64("kube:pw")
	} {
		if got, err := e.pull(t, ref, auth); err != nil || got != id {
			t.Errorf("pull with %v: %s %v", auth, got, err)
		}
	}
	if _, err := e.pull(t, ref, &runtimeapi.AuthConfig{RegistryToken: "forged"}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("forged registry token: %v, want Unauthenticated", err)
	}
}

func TestImagePullThroughRegistryMirror(t *testing.T) {
	// A [[registry.mirror]] holds the image; the registry's own location
	// (another local registry) is down, so only the mirror can serve it.
	origin := testimage.StartRegistry(t, testimage.RegistryOptions{})
	e := startImageEnv(t, imageEnvOptions{conf: func(mirror string) testimage.ConfOptions {
		return testimage.ConfOptions{Insecure: []string{mirror, origin.Host}, Mirrors: map[string][]string{origin.Host: {mirror}}}
	}})
	origin.Stop()
	_, _, id := e.push(t, "team/app:2", testimage.Spec{Name: "mirrored"})
	if got := e.mustPull(t, origin.Ref("team/app:2")); got != id {
		t.Fatalf("pulled %s, want %s", got, id)
	}
	if img := e.status(t, origin.Ref("team/app:2")); img == nil || !slices.Contains(img.RepoTags, origin.Ref("team/app:2")) {
		t.Fatalf("the image is not named after the registry asked for: %+v", img)
	}
}
