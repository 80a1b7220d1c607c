package storage

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berth-cri/berth/errdefs"
	"github.com/berth-cri/berth/test/testimage"
)

func TestListAndRemoveSemantics(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := t.Context()
	digest, ref1, id := e.push(t, "multi:1", testimage.Spec{Name: "names"})
	_, ref2, _ := e.push(t, "multi:2", testimage.Spec{Name: "names"})
	_, ref3, _ := e.push(t, "other:1", testimage.Spec{Name: "names"})
	_, refB, idB := e.push(t, "b:1", testimage.Spec{Name: "b"})
	for _, r := range []string{ref1, ref2, ref3, refB} {
		if _, err := e.store.Pull(ctx, r, Auth{}); err != nil {
			t.Fatal(err)
		}
	}
	imgs, err := e.store.ListImages(ctx, "")
	if err != nil || len(imgs) != 2 {
		t.Fatalf("list: %d %v", len(imgs), err)
	}
	filtered, err := e.store.ListImages(ctx, ref2)
	if err != nil || len(filtered) != 1 || filtered[0].ID != id {
		t.Fatalf("filter: %v %v", filtered, err)
	}
	if none, err := e.store.ListImages(ctx, e.reg.Host+"/nope:1"); err != nil || len(none) != 0 {
		t.Fatalf("filter unknown: %v %v", none, err)
	}

	// By name: only that name goes while others remain.
	if err := e.store.RemoveImage(ctx, ref1); err != nil {
		t.Fatal(err)
	}
	img, err := e.store.ResolveImage(ctx, id)
	if err != nil || slices.Contains(img.RepoTags, ref1) || !slices.Contains(img.RepoTags, ref2) {
		t.Fatalf("after removing %s: %+v %v", ref1, img, err)
	}
	// By repo digest: the names of that repository go (multi:2), not
	// other:1's.
	if err := e.store.RemoveImage(ctx, e.reg.Host+"/multi@"+digest); err != nil {
		t.Fatal(err)
	}
	img, err = e.store.ResolveImage(ctx, id)
	if err != nil || !slices.Equal(img.RepoTags, []string{ref3}) {
		t.Fatalf("after removing by digest: %+v %v", img, err)
	}
	// The last name takes the image with it.
	if err := e.store.RemoveImage(ctx, ref3); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.ResolveImage(ctx, id); !errdefs.IsNotFound(err) {
		t.Fatalf("image still there: %v", err)
	}
	// By ID prefix.
	if err := e.store.RemoveImage(ctx, strings.TrimPrefix(idB, "sha256:")[:12]); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.ResolveImage(ctx, refB); !errdefs.IsNotFound(err) {
		t.Fatalf("b still there: %v", err)
	}
	// Unknown: fine.
	for _, r := range []string{"nothing:here", idB, e.reg.Host + "/b@" + digest} {
		if err := e.store.RemoveImage(ctx, r); err != nil {
			t.Errorf("remove unknown %s: %v", r, err)
		}
	}
	if n, l := countImages(t, e.store), countLayers(t, e.store); n != 0 || l != 0 {
		t.Fatalf("left: %d images, %d layers", n, l)
	}
}

func TestPinnedImage(t *testing.T) {
	e := newEnv(t, envOptions{})
	_, ref, _ := e.push(t, "pause:3", testimage.Spec{Name: "pause"})
	// The registry's port is known only now; Options are read at use.
	e.store.opts.PinnedImages = []string{ref}
	img, err := e.store.Pull(t.Context(), ref, Auth{})
	if err != nil {
		t.Fatal(err)
	}
	if !img.Pinned {
		t.Fatal("pause image not pinned")
	}
	if err := e.store.RemoveImage(t.Context(), img.ID); !errdefs.Is(err, errdefs.KindFailedPrecondition) {
		t.Fatalf("removing the pinned image: %v", err)
	}
}

func TestContainerRootfs(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := t.Context()
	digest, ref, id := e.push(t, "rootfs:1", testimage.Spec{Name: "rootfs", Entrypoint: []string{"/bin/sh"}, Env: []string{"A=1"}, WorkingDir: "/tmp"})
	if _, err := e.store.Pull(ctx, ref, Auth{}); err != nil {
		t.Fatal(err)
	}
	const ctr = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	if _, err := e.store.CreateContainerRootfs(ctx, "../escape", "", ref); !errdefs.IsInvalid(err) {
		t.Fatalf("bad id: %v", err)
	}
	if _, err := e.store.CreateContainerRootfs(ctx, ctr, "n", e.reg.Host+"/absent:1"); !errdefs.IsNotFound(err) {
		t.Fatalf("absent image: %v", err)
	}
	rfs, err := e.store.CreateContainerRootfs(ctx, ctr, "k8s_c_pod_ns_uid_0", ref)
	if err != nil {
		t.Fatal(err)
	}
	if rfs.ImageID != id || rfs.ImageRef != e.reg.Host+"/rootfs@"+digest || rfs.Config.WorkingDir != "/tmp" || rfs.Config.Entrypoint[0] != "/bin/sh" {
		t.Fatalf("rootfs: %+v", rfs)
	}
	if _, err := e.store.CreateContainerRootfs(ctx, ctr, "other", ref); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("duplicate id: %v", err)
	}
	if _, err := e.store.CreateContainerRootfs(ctx, "another", "k8s_c_pod_ns_uid_0", ref); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("duplicate name: %v", err)
	}
	path, err := e.store.MountContainerRootfs(ctr)
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.store.MountContainerRootfs(ctr)
	if err != nil || again != path {
		t.Fatalf("second mount: %s %v", again, err)
	}
	b, err := os.ReadFile(filepath.Join(path, "etc/berth-image"))
	if err != nil || !strings.Contains(string(b), "name=rootfs") {
		t.Fatalf("image content: %q %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(path, "tmp/written"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	ids, err := e.store.ListContainerRootfs()
	if err != nil || !slices.Equal(ids, []string{ctr}) {
		t.Fatalf("list: %v %v", ids, err)
	}
	// The image is in use: removal names the container.
	err = e.store.RemoveImage(ctx, id)
	if !errdefs.Is(err, errdefs.KindFailedPrecondition) || !strings.Contains(err.Error(), ctr) {
		t.Fatalf("remove used image: %v", err)
	}
	// FsInfo sees the container's write in the container filesystem.
	imgFs, ctrFs, err := e.store.FsInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if imgFs.UsedBytes < 1<<20 || imgFs.InodesUsed == 0 || ctrFs.UsedBytes < 1<<20 || ctrFs.InodesUsed == 0 || imgFs.Mountpoint != e.store.GraphRoot() {
		t.Fatalf("fs info: %+v %+v", imgFs, ctrFs)
	}
	// One unmount undoes both mounts.
	if err := e.store.UnmountContainerRootfs(ctr); err != nil {
		t.Fatal(err)
	}
	if n, _ := e.store.store.Mounted(ctr); n != 0 {
		t.Fatalf("still mounted %d times", n)
	}
	if err := e.store.UnmountContainerRootfs(ctr); err != nil {
		t.Fatalf("second unmount: %v", err)
	}
	// Remount keeps the write.
	path, err = e.store.MountContainerRootfs(ctr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(path, "tmp/written")); err != nil {
		t.Fatal(err)
	}
	if err := e.store.RemoveContainerRootfs(ctr); err != nil {
		t.Fatal(err)
	}
	if err := e.store.RemoveContainerRootfs(ctr); err != nil {
		t.Fatalf("second remove: %v", err)
	}
	if _, err := os.Stat(path); err == nil {
		if entries, _ := os.ReadDir(path); len(entries) > 0 {
			t.Fatalf("rootfs %s still has content", path)
		}
	}
	if err := e.store.RemoveImage(ctx, id); err != nil {
		t.Fatal(err)
	}
}

func TestReopenKeepsImagesAndSweepsOrphans(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := t.Context()
	_, ref, id := e.push(t, "persist:1", testimage.Spec{Name: "persist"})
	if _, err := e.store.Pull(ctx, ref, Auth{}); err != nil {
		t.Fatal(err)
	}
	// An orphan layer, as a pull killed mid-way leaves.
	if _, err := e.store.store.CreateLayer("", "", nil, "", false, nil); err != nil {
		t.Fatal(err)
	}
	before := countLayers(t, e.store)
	opts := e.store.opts
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	s := openTestStore(t, opts)
	img, err := s.ResolveImage(ctx, ref)
	if err != nil || img.ID != id {
		t.Fatalf("after reopen: %v %v", img, err)
	}
	if after := countLayers(t, s); after != before-1 {
		t.Fatalf("layers %d -> %d: the orphan was not swept", before, after)
	}
}

func TestVfsDriver(t *testing.T) {
	e := newEnv(t, envOptions{store: func(o *Options) { o.Driver = "vfs" }})
	if e.store.Driver() != "vfs" {
		t.Fatal(e.store.Driver())
	}
	_, ref, _ := e.push(t, "vfs:1", testimage.Spec{Name: "vfs"})
	if _, err := e.store.Pull(t.Context(), ref, Auth{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.CreateContainerRootfs(t.Context(), "c1", "", ref); err != nil {
		t.Fatal(err)
	}
	p, err := e.store.MountContainerRootfs("c1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(p, "bin/busybox")); err != nil {
		t.Fatal(err)
	}
	if err := e.store.RemoveContainerRootfs("c1"); err != nil {
		t.Fatal(err)
	}
}

// FsInfo counts a hard-linked file once, as du does.
func TestFsInfoCountsHardLinksOnce(t *testing.T) {
	e := newEnv(t, envOptions{})
	before, _, err := e.store.measure(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(e.store.GraphRoot(), "hardlinks")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a"), make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	after, _, err := e.store.measure(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if grew := after.UsedBytes - before.UsedBytes; grew < 1<<20 || grew >= 3<<19 {
		t.Errorf("a 1 MiB file with two links grew the usage by %d bytes", grew)
	}
	if grew := after.InodesUsed - before.InodesUsed; grew != 2 { // the dir and the file
		t.Errorf("inodes grew by %d, want 2", grew)
	}
}

func TestShortHexIsANameNotAnIDPrefix(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := t.Context()
	_, ref, id := e.push(t, "hex:1", testimage.Spec{Name: "hex"})
	if _, err := e.store.Pull(ctx, ref, Auth{}); err != nil {
		t.Fatal(err)
	}
	hex := strings.TrimPrefix(id, "sha256:")
	// A few hex digits are an image name ("cafe"), never the local image
	// whose ID happens to start with them.
	for _, n := range []int{3, 4, 8, 11} {
		if img, err := e.store.ResolveImage(ctx, hex[:n]); !errdefs.IsNotFound(err) {
			t.Errorf("ResolveImage(%q) = %v, %v: want NotFound", hex[:n], img, err)
		}
	}
	// "sha256:" says it is an ID; 12 or more digits are one as printed.
	for _, r := range []string{"sha256:" + hex[:3], "sha256:" + hex[:8], hex[:12], hex[:20], id} {
		if img, err := e.store.ResolveImage(ctx, r); err != nil || img.ID != id {
			t.Errorf("ResolveImage(%q) = %v, %v: want %s", r, img, err, id)
		}
	}
}

func TestParseIDPrefix(t *testing.T) {
	for in, want := range map[string]bool{
		"cafe": false, "abc": false, "0123456789a": false, "0123456789ab": true,
		"sha256:abc": true, "sha256:ab": false, "sha256:cafe": true, "CAFE0123456789": false,
	} {
		if _, _, ok := parseIDPrefix(in); ok != want {
			t.Errorf("parseIDPrefix(%q) = %v, want %v", in, ok, want)
		}
	}
}
