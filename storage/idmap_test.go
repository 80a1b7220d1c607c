package storage

import (
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-cri/berth/test/testimage"
)

// A root filesystem made with mappings shows the image's files through
// idmapped layers: owned by the mapped ids when seen from the node, while
// the image's layer on disk keeps its owners (nothing chowned). The vfs
// driver cannot do that and says so.
func TestRootfsWithIDMappings(t *testing.T) {
	e := newEnv(t, envOptions{})
	if !e.store.SupportsIDMappedLayers() {
		t.Skip("overlay with idmapped layers is not available on this kernel")
	}
	ctx := t.Context()
	_, ref, _ := e.push(t, "idmap:1", testimage.Spec{Name: "idmap"})
	if _, err := e.store.Pull(ctx, ref, Auth{}); err != nil {
		t.Fatal(err)
	}
	const ctr = "1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	m := []IDMap{{ContainerID: 0, HostID: 600000, Size: 65536}}
	if _, err := e.store.CreateContainerRootfs(ctx, ctr, "", ref, WithIDMappings(m, m)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.store.RemoveContainerRootfs(ctr) })
	path, err := e.store.MountContainerRootfs(ctr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.store.UnmountContainerRootfs(ctr) })
	stat := func(p string) unix.Stat_t {
		t.Helper()
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	if st := stat(filepath.Join(path, "etc/berth-image")); st.Uid != 600000 || st.Gid != 600000 {
		t.Errorf("image file through the mapped rootfs: %d:%d, want 600000:600000", st.Uid, st.Gid)
	}
	layers, _ := filepath.Glob(filepath.Join(e.store.GraphRoot(), "overlay", "*", "diff", "etc", "berth-image"))
	if len(layers) == 0 {
		t.Fatal("no layer holds etc/berth-image")
	}
	for _, l := range layers {
		if st := stat(l); st.Uid != 0 || st.Gid != 0 {
			t.Errorf("layer file %s is %d:%d on disk: chowned", l, st.Uid, st.Gid)
		}
	}

	vfs := newEnv(t, envOptions{store: func(o *Options) { o.Driver = "vfs" }})
	if vfs.store.SupportsIDMappedLayers() {
		t.Error("vfs claims idmapped layers")
	}
}
