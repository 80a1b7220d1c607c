package testimage

import (
	"archive/tar"
	"fmt"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// OfficialPasswd is /etc/passwd of the official busybox image (Docker
// Hub's "busybox", which registry.k8s.io/e2e-test-images/busybox is
// built from): a conformance suite looks users up by name (nobody,
// www-data).
const OfficialPasswd = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
`

// OfficialGroup is its /etc/group.
const OfficialGroup = `root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
kmem:x:9:
wheel:x:10:root
cdrom:x:11:
dialout:x:18:
floppy:x:19:
video:x:28:
audio:x:29:
tape:x:32:
www-data:x:33:
operator:x:37:
utmp:x:43:
plugdev:x:46:
staff:x:50:
lock:x:54:
netdev:x:82:
users:x:100:
nogroup:x:65534:
`

// OfficialBusyboxLayer is a layer laid out like the official busybox
// image: the busybox binary at /bin/busybox with every applet it has as
// a hard link in /bin (not a symlink: masking /bin/ls must mask ls, not
// busybox), and busybox's /etc/passwd and /etc/group. bbPath is a static
// busybox built without FEATURE_SH_STANDALONE, so `sh -c ls` runs
// /bin/ls; Debian's busybox-static is not one (see test/critest).
func OfficialBusyboxLayer(bbPath string) (v1.Layer, error) {
	bb, err := os.ReadFile(bbPath)
	if err != nil {
		return nil, fmt.Errorf("read busybox: %w", err)
	}
	out, err := exec.Command(bbPath, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", bbPath, err)
	}
	names := strings.Fields(string(out))
	sort.Strings(names)
	entries := []entry{
		dir("bin", 0o755, 0, 0), dir("dev", 0o755, 0, 0), dir("etc", 0o755, 0, 0),
		dir("home", 0o755, 0, 0), dir("proc", 0o555, 0, 0), dir("root", 0o700, 0, 0),
		dir("run", 0o755, 0, 0), dir("sbin", 0o755, 0, 0), dir("sys", 0o555, 0, 0),
		dir("tmp", 0o1777, 0, 0), dir("usr", 0o755, 0, 0), dir("usr/bin", 0o755, 0, 0),
		dir("usr/sbin", 0o755, 0, 0), dir("var", 0o755, 0, 0), dir("var/spool", 0o755, 0, 0),
		dir("var/spool/mail", 0o755, 8, 8), dir("var/tmp", 0o1777, 0, 0),
		dir("var/www", 0o755, 33, 33),
		file("bin/busybox", 0o755, bb),
		file("etc/passwd", 0o644, []byte(OfficialPasswd)),
		file("etc/group", 0o644, []byte(OfficialGroup)),
	}
	for _, n := range names {
		if n == "busybox" || strings.Contains(n, "/") {
			continue
		}
		entries = append(entries, entry{hdr: tar.Header{
			Name: path.Join("bin", n), Typeflag: tar.TypeLink, Linkname: "bin/busybox", Mode: 0o755,
		}})
	}
	return tarLayer(entries)
}

// Compose builds an image of base layers plus the Spec's own top layer
// (/etc/berth-image and Spec.Files), with the Spec's config: an image
// on a base other than the host busybox's (see Busybox).
func Compose(s Spec, base ...v1.Layer) (v1.Image, error) {
	arch := s.Arch
	if arch == "" {
		arch = "amd64"
	}
	top, err := specLayer(s, arch)
	if err != nil {
		return nil, err
	}
	img := empty.Image
	layerType := types.OCILayer
	if s.Docker {
		img = mutate.MediaType(img, types.DockerManifestSchema2)
		img = mutate.ConfigMediaType(img, types.DockerConfigJSON)
		layerType = types.DockerLayer
	} else {
		img = mutate.MediaType(img, types.OCIManifestSchema1)
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	}
	var adds []mutate.Addendum
	for i, l := range append(base, top) {
		adds = append(adds, mutate.Addendum{Layer: l, MediaType: layerType,
			History: v1.History{Created: v1.Time{Time: epoch}, CreatedBy: fmt.Sprintf("testimage layer %d of %q", i, s.Name)}})
	}
	img, err = mutate.Append(img, adds...)
	if err != nil {
		return nil, fmt.Errorf("append layers: %w", err)
	}
	return configure(img, s, arch)
}

// SingleIndex wraps img in an index with one linux entry for its
// architecture, as most public images are published.
func SingleIndex(img v1.Image, docker bool) (v1.ImageIndex, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	base := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	if docker {
		base = mutate.IndexMediaType(empty.Index, types.DockerManifestList)
	}
	return mutate.AppendManifests(base, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
		Platform: &v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant},
	}}), nil
}
