package testimage

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// BusyboxPath is the static busybox every image is built from.
const BusyboxPath = "/bin/busybox"

// epoch is every file's mtime: layers are byte-for-byte reproducible, so
// two images built from the same Spec share digests, as real ones do.
var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// fallbackApplets are linked when `busybox --list-full` cannot run.
var fallbackApplets = []string{
	"sh", "ash", "ls", "cat", "echo", "sleep", "id", "head", "tail", "grep", "wc",
	"true", "false", "env", "hostname", "mount", "umount", "ps", "nc", "wget", "ip",
	"dd", "yes", "mkdir", "rm", "touch", "chmod", "chown", "cp", "mv", "ln", "pwd",
	"whoami", "test", "[", "kill", "date", "sed", "awk", "tr", "stat", "df", "du",
	"readlink", "uname", "nslookup", "ping", "seq", "sync", "tee", "timeout", "which",
	"printf", "find", "xargs", "sort", "uniq", "cut", "md5sum", "sha256sum", "nproc",
}

// File is an extra file in an image's top layer.
type File struct {
	Path    string // absolute, inside the image
	Content string
	Mode    os.FileMode // 0644 when zero; with os.ModeNamedPipe a FIFO; with os.ModeSymlink a link to Content
	UID     int
	GID     int
}

type entry struct {
	hdr  tar.Header
	data []byte
}

// tarLayer returns an uncompressed tar of entries as a gzip layer. Parent
// directories are the caller's job, as in a real image build.
func tarLayer(entries []entry) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		h.ModTime = epoch
		h.Format = tar.FormatPAX
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(&h); err != nil {
			return nil, fmt.Errorf("tar header %s: %w", h.Name, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				return nil, fmt.Errorf("tar %s: %w", h.Name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithCompressedCaching)
}

func dir(name string, mode int64, uid, gid int) entry {
	return entry{hdr: tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: mode, Uid: uid, Gid: gid}}
}

func file(name string, mode int64, data []byte) entry {
	return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode}, data: data}
}

func symlink(name, target string) entry {
	return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}}
}

var (
	baseOnce  sync.Once
	baseLayer v1.Layer
	baseErr   error
)

// busyboxLayer is the base layer: the directory skeleton, /bin/busybox
// and one symlink per applet where busybox itself says it belongs. It is
// built once per process: it is the same for every image.
func busyboxLayer() (v1.Layer, error) {
	baseOnce.Do(func() { baseLayer, baseErr = buildBusyboxLayer() })
	return baseLayer, baseErr
}

// baseDirs are the directories of the base layer; the top layer does not
// repeat them (that would reset their owner and mode).
var baseDirs = map[string]bool{
	"bin": true, "dev": true, "etc": true, "home": true, "home/berth": true, "proc": true,
	"root": true, "run": true, "sbin": true, "sys": true, "tmp": true, "usr": true,
	"usr/bin": true, "usr/sbin": true, "var": true, "var/tmp": true,
}

func buildBusyboxLayer() (v1.Layer, error) {
	bb, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return nil, fmt.Errorf("read %s (apt-get install busybox-static): %w", BusyboxPath, err)
	}
	entries := []entry{
		dir("bin", 0o755, 0, 0), dir("dev", 0o755, 0, 0), dir("etc", 0o755, 0, 0),
		dir("home", 0o755, 0, 0), dir("home/berth", 0o755, 1000, 1000),
		dir("proc", 0o555, 0, 0), dir("root", 0o700, 0, 0), dir("run", 0o755, 0, 0),
		dir("sbin", 0o755, 0, 0), dir("sys", 0o555, 0, 0), dir("tmp", 0o1777, 0, 0),
		dir("usr", 0o755, 0, 0), dir("usr/bin", 0o755, 0, 0), dir("usr/sbin", 0o755, 0, 0),
		dir("var", 0o755, 0, 0), dir("var/tmp", 0o1777, 0, 0),
		file("bin/busybox", 0o755, bb),
	}
	seen := map[string]bool{"bin/busybox": true}
	for _, p := range applets() {
		if !seen[p] {
			seen[p] = true
			entries = append(entries, symlink(p, "/bin/busybox"))
		}
	}
	return tarLayer(entries)
}

// applets lists the applet paths (relative, e.g. "usr/bin/env"). Every
// applet also gets a /bin link so scripts that hardcode /bin/x work.
func applets() []string {
	var paths []string
	if out, err := exec.Command(BusyboxPath, "--list-full").Output(); err == nil {
		for _, l := range strings.Fields(string(out)) {
			paths = append(paths, l, "bin/"+path.Base(l))
		}
	}
	if len(paths) == 0 {
		for _, a := range fallbackApplets {
			paths = append(paths, "bin/"+a)
		}
	}
	sort.Strings(paths)
	return paths
}

const passwd = `root:x:0:0:root:/root:/bin/sh
berth:x:1000:1000:berth:/home/berth:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
`

const group = `root:x:0:
berth:x:1000:
nogroup:x:65534:
`

// usersLayer holds /etc/passwd and /etc/group, so User "berth" resolves
// to 1000:1000 and "nobody" to 65534:65534.
func usersLayer() (v1.Layer, error) {
	return tarLayer([]entry{
		file("etc/passwd", 0o644, []byte(passwd)),
		file("etc/group", 0o644, []byte(group)),
	})
}

// specLayer is the per-image top layer: /etc/berth-image says which image
// and architecture this is, then the Spec's own files.
func specLayer(s Spec, arch string) (v1.Layer, error) {
	entries := []entry{file("etc/berth-image", 0o644, []byte(fmt.Sprintf("name=%s\narch=%s\n", s.Name, arch)))}
	dirs := map[string]bool{}
	for _, f := range s.Files {
		p := strings.TrimPrefix(path.Clean("/"+f.Path), "/")
		// Parent directories the base layer lacks are created so the
		// tar is valid on its own.
		for d := path.Dir(p); d != "." && !dirs[d] && !baseDirs[d]; d = path.Dir(d) {
			dirs[d] = true
		}
		mode := int64(f.Mode.Perm())
		if mode == 0 {
			mode = 0o644
		}
		if f.Mode&os.ModeSetuid != 0 {
			mode |= 0o4000 // a setuid-root helper, as in critest's nonewprivs image
		}
		e := file(p, mode, []byte(f.Content))
		if f.Mode&os.ModeNamedPipe != 0 {
			// A hostile image's FIFO where a file is expected.
			e = entry{hdr: tar.Header{Name: p, Typeflag: tar.TypeFifo, Mode: mode}}
		}
		if f.Mode&os.ModeSymlink != 0 {
			e = symlink(p, f.Content)
		}
		e.hdr.Uid, e.hdr.Gid = f.UID, f.GID
		entries = append(entries, e)
	}
	var ds []string
	for d := range dirs {
		ds = append(ds, d)
	}
	sort.Strings(ds) // parents sort before children
	pre := make([]entry, 0, len(ds))
	for _, d := range ds {
		pre = append(pre, dir(d, 0o755, 0, 0))
	}
	return tarLayer(append(pre, entries...))
}
