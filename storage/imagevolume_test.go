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

func TestImageVolumes(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := t.Context()
	digest, ref, id := e.push(t, "vol:1", testimage.Spec{Name: "vol"})
	if _, err := e.store.Pull(ctx, ref, Auth{}); err != nil {
		t.Fatal(err)
	}
	const ctr = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	if _, err := e.store.CreateContainerRootfs(ctx, ctr, "k8s_v", ref); err != nil {
		t.Fatal(err)
	}

	whole, err := e.store.CreateImageVolume(ctx, ctr, 0, id, "")
	if err != nil {
		t.Fatal(err)
	}
	if whole.ImageID != id || whole.ImageRef != e.reg.Host+"/vol@"+digest {
		t.Errorf("volume names image %s / %s, want %s / its digest", whole.ImageID, whole.ImageRef, id)
	}
	if b, err := os.ReadFile(filepath.Join(whole.Path, "etc/berth-image")); err != nil || !strings.Contains(string(b), "name=vol") {
		t.Errorf("image content in the volume: %q %v", b, err)
	}
	sub, err := e.store.CreateImageVolume(ctx, ctr, 1, ref, "etc")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(sub.Path, "berth-image")); err != nil {
		t.Errorf("sub path etc: %v", err)
	}
	// A sub path that is not in the image, or that climbs out of it.
	for i, p := range []string{"not-existing", "../../../../etc/shadow-nope"} {
		if _, err := e.store.CreateImageVolume(ctx, ctr, 2+i, ref, p); !errdefs.IsInvalid(err) {
			t.Errorf("sub path %q: got %v, want Invalid", p, err)
		}
	}
	if ids, err := e.store.ListContainerRootfs(); err != nil || !slices.Equal(ids, []string{ctr}) {
		t.Errorf("ListContainerRootfs = %v %v, want only the owner", ids, err)
	}

	// The image stays while a volume uses it, even with the owner's own
	// root filesystem from another image.
	if err := e.store.RemoveImage(ctx, id); !errdefs.Is(err, errdefs.KindFailedPrecondition) {
		t.Fatalf("remove an image a volume uses: %v", err)
	}
	if err := e.store.RemoveContainerRootfs(ctr); err != nil {
		t.Fatal(err)
	}
	if n, _ := e.store.store.Containers(); len(n) != 0 {
		t.Errorf("store containers left after removing the owner: %d", len(n))
	}
	if err := e.store.RemoveImage(ctx, id); err != nil {
		t.Fatal(err)
	}
}
