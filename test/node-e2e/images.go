package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-cri/berth/test/testimage"
)

// upstreams are the registries the suite names. registries.conf rewrites
// each to <local registry>/<host>, so each keeps its own namespace in the
// one local registry and no pull can reach the real one. The suite's
// invalid registry is rewritten too: nothing is pushed there, so its
// pulls fail as upstream's do, without a lookup of a public name.
var upstreams = []string{
	"registry.k8s.io", "invalid.registry.k8s.io", "gcr.io", "k8s.gcr.io", "docker.io", "quay.io",
}

// tools are what the images and the run are made of.
type tools struct {
	k8s     string // e2e_node.test, kubelet, ginkgo, agnhost (build.sh)
	k8sSrc  string // k8s.io/kubernetes' module directory (agnhost's files)
	busybox string // static busybox 1.37, upstream's defconfig
	bash    string // Debian's bash-static
	nginx   string // critest's nginx stand-in
	curl    string // the curl stand-in (standins/curl)
	hostn   string // the hostname stand-in (standins/hostname)
	nnp     string // k8s.io/kubernetes/test/images/nonewprivs
	pause   string // berth-pause
}

// buildTools builds (or finds in the cache) everything the run needs.
func buildTools(ctx context.Context, o options) (tools, error) {
	t := tools{pause: filepath.Join(o.bindir, "berth-pause")}
	var err error
	if t.k8s, err = scriptPath(ctx, filepath.Join(o.src, "build.sh"), o.cache); err != nil {
		return t, fmt.Errorf("build the suite: %w", err)
	}
	if t.busybox, err = scriptPath(ctx, filepath.Join(o.src, "build-busybox.sh"), o.cache); err != nil {
		return t, fmt.Errorf("build busybox: %w", err)
	}
	if t.bash, err = scriptPath(ctx, filepath.Join(o.src, "fetch-bash-static.sh"), o.cache); err != nil {
		return t, fmt.Errorf("fetch bash-static: %w", err)
	}
	mod := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "k8s.io/kubernetes")
	mod.Dir = filepath.Join(o.src, "k8s")
	out, err := mod.Output()
	if err != nil {
		return t, fmt.Errorf("find k8s.io/kubernetes' module directory: %w", err)
	}
	t.k8sSrc = strings.TrimSpace(string(out))
	// Small static programs, built each run (seconds): the nonewprivs
	// helper from the suite's own module, and critest's nginx stand-in.
	t.nnp = filepath.Join(o.build, "images", "nnp")
	if err := goBuild(ctx, filepath.Join(o.src, "k8s"), t.nnp, "k8s.io/kubernetes/test/images/nonewprivs"); err != nil {
		return t, err
	}
	t.nginx = filepath.Join(o.build, "images", "nginx")
	if err := goBuild(ctx, filepath.Join(o.src, "..", "critest", "standins"), t.nginx, "./nginx"); err != nil {
		return t, err
	}
	t.curl = filepath.Join(o.build, "images", "curl")
	if err := goBuild(ctx, filepath.Join(o.src, "standins"), t.curl, "./curl"); err != nil {
		return t, err
	}
	t.hostn = filepath.Join(o.build, "images", "hostname")
	if err := goBuild(ctx, filepath.Join(o.src, "standins"), t.hostn, "./hostname"); err != nil {
		return t, err
	}
	return t, nil
}

// scriptPath runs a build script with the cache directory and returns
// the path it prints last.
func scriptPath(ctx context.Context, script, cache string) (string, error) {
	cmd := exec.CommandContext(ctx, "bash", script, cache)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", err
	}
	lines := strings.Fields(string(out))
	if len(lines) == 0 {
		return "", fmt.Errorf("%s printed no path", script)
	}
	return lines[len(lines)-1], nil
}

func goBuild(ctx context.Context, dir, out, pkg string) error {
	b := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, pkg)
	b.Dir = dir
	b.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := b.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %w\n%s", pkg, err, msg)
	}
	return nil
}

// image is one image the suite pulls, under every name it pulls it by.
type image struct {
	refs []string
	spec testimage.Spec
}

const e2eImages = "registry.k8s.io/e2e-test-images/"

// catalog lists the images the selected specs pull (e2e_node.test
// --list-images lists every image any spec may use); the comments say
// how each stands for upstream's.
func catalog(t tools) ([]image, error) {
	read := func(p string) (string, error) {
		b, err := os.ReadFile(p)
		return string(b), err
	}
	var agnhost, bash, curl, hostn, nginx, nnp, pause, crt, key string
	for _, f := range []struct {
		dst  *string
		path string
	}{
		{&agnhost, filepath.Join(t.k8s, "agnhost")}, {&bash, t.bash}, {&curl, t.curl}, {&hostn, t.hostn}, {&nginx, t.nginx},
		{&nnp, t.nnp}, {&pause, t.pause},
		{&crt, filepath.Join(t.k8sSrc, "test/images/agnhost/porter/localhost.crt")},
		{&key, filepath.Join(t.k8sSrc, "test/images/agnhost/porter/localhost.key")},
	} {
		var err error
		if *f.dst, err = read(f.path); err != nil {
			return nil, err
		}
	}
	// agnhost's image is Alpine with bash and curl, the test certificate
	// its servers use for TLS, and a user and a group of its own
	// (test/images/agnhost/Dockerfile); here the base is busybox, as
	// Alpine's own tools are, plus a static bash and a curl stand-in.
	agnhostFiles := []testimage.File{
		{Path: "/agnhost", Mode: 0o755, Content: agnhost},
		{Path: "/agnhost-2", Mode: os.ModeSymlink, Content: "agnhost"},
		{Path: "/localhost.crt", Content: crt},
		{Path: "/localhost.key", Content: key},
		{Path: "/bin/bash", Mode: 0o755, Content: bash},
		{Path: "/usr/bin/curl", Mode: 0o755, Content: curl},
		{Path: "/uploads/.keep", Content: ""},
		{Path: "/etc/passwd", Content: testimage.OfficialPasswd +
			"user-defined-in-image:x:1000:1000:Linux User,,,:/home/user-defined-in-image:/bin/sh\n"},
		{Path: "/etc/group", Content: testimage.OfficialGroup +
			"user-defined-in-image:x:1000:\ngroup-defined-in-image:x:50000:user-defined-in-image\n"},
	}
	pauseRefs := []string{"registry.k8s.io/pause:3.10.1", "registry.k8s.io/pause:3.10"}
	return []image{
		// busybox 1.37 with upstream's configuration, as the e2e image
		// (built on the official busybox:1.37.0) carries.
		{refs: []string{e2eImages + "busybox:1.37.0-1"}, spec: testimage.Spec{Name: "busybox", Cmd: []string{"sh"}}},
		{refs: []string{e2eImages + "agnhost:2.59", e2eImages + "agnhost:2.55"}, spec: testimage.Spec{
			Name: "agnhost", Entrypoint: []string{"/agnhost"}, Cmd: []string{"pause"}, Files: agnhostFiles}},
		// A setuid-root helper that prints its effective uid: the suite's
		// own nonewprivs program.
		{refs: []string{e2eImages + "nonewprivs:1.3"}, spec: testimage.Spec{
			Name: "nonewprivs", Cmd: []string{"nnp"},
			Files: []testimage.File{{Path: "/usr/local/bin/nnp", Mode: 0o755 | os.ModeSetuid, Content: nnp}}}},
		// critest's nginx stand-in: a web server on port 80 whose
		// process reads as nginx's.
		{refs: []string{e2eImages + "nginx:1.14-4", e2eImages + "nginx:1.15-4"}, spec: testimage.Spec{
			Name: "nginx", Cmd: []string{"nginx", "-g", "daemon off;"}, StopSignal: "SIGQUIT",
			Files: []testimage.File{
				{Path: "/usr/sbin/nginx", Mode: 0o755, Content: nginx},
				{Path: "/etc/nginx/conf.d/default.conf", Content: "server {\n    listen       80;\n    server_name  localhost;\n}\n"},
				{Path: "/usr/share/nginx/html/index.html", Content: "<h1>Welcome to nginx!</h1>\n"},
			}}},
		// jessie-dnsutils is Debian with dnsutils; the specs that use it
		// run `hostname` and `hostname -f` (Debian's, which resolves the
		// FQDN through /etc/hosts first): busybox plus a stand-in for
		// Debian's hostname.
		{refs: []string{e2eImages + "jessie-dnsutils:1.7"}, spec: testimage.Spec{
			Name: "jessie-dnsutils", Cmd: []string{"sh"},
			Files: []testimage.File{{Path: "/bin/hostname", Mode: 0o755, Content: hostn}}}},
		// berth-pause, as the real pause, runs as 65535.
		{refs: pauseRefs, spec: testimage.Spec{
			Name: "pause", Entrypoint: []string{"/pause"}, User: "65535:65535",
			Files: []testimage.File{{Path: "/pause", Mode: 0o755, Content: pause}}}},
	}, nil
}

// pushAll builds every image on the busybox base and pushes it, as an
// index with one linux/amd64 entry like upstream's, under each of its
// names to reg (below "<host>/" for each upstream host).
func pushAll(reg *testimage.Registry, t tools) (int, error) {
	base, err := testimage.OfficialBusyboxLayer(t.busybox)
	if err != nil {
		return 0, err
	}
	imgs, err := catalog(t)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, im := range imgs {
		img, err := testimage.Compose(im.spec, base)
		if err != nil {
			return n, fmt.Errorf("build %s: %w", im.spec.Name, err)
		}
		for _, ref := range im.refs {
			if err := push(reg, ref, img); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

func push(reg *testimage.Registry, ref string, img v1.Image) error {
	idx, err := testimage.SingleIndex(img, false)
	if err != nil {
		return err
	}
	_, _, err = reg.PushImageIndex(ref, idx)
	return err
}
