package main

import (
	"fmt"
	"os"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-cri/berth/test/testimage"
)

// upstreams are the registries critest pulls from. registries.conf
// rewrites each to <local registry>/<host>, so each keeps its own
// namespace in the one local registry and no pull can reach the real one.
var upstreams = []string{
	"registry.k8s.io", "k8s.gcr.io", "gcr.io", "public.ecr.aws", "docker.io", "quay.io", "ghcr.io",
}

// image is one image critest pulls: every name it is pushed under, and
// how it is built.
type image struct {
	refs []string // "host/repo:tag"
	spec testimage.Spec
	// single pushes a lone manifest, as upstream publishes it; the
	// others are pushed as an index with one linux/amd64 entry.
	single bool
}

// tools are the files images are made of, built before the images.
type tools struct {
	busybox string // static busybox, official-image config
	nginx   string // the nginx stand-in
	nnp     string // the nonewprivs helper
	pause   string // berth-pause
}

const (
	k8sTestImages = "registry.k8s.io/e2e-test-images/"
	criTools      = "gcr.io/k8s-staging-cri-tools/"
	ecrLibrary    = "public.ecr.aws/docker/library/"
)

// catalog lists every image critest v1.37 pulls, under the names it
// pulls them by (it compares the repo tags it gets back); the comments
// say what critest checks in each.
func catalog(t tools) ([]image, error) {
	nginx, err := os.ReadFile(t.nginx)
	if err != nil {
		return nil, err
	}
	nnp, err := os.ReadFile(t.nnp)
	if err != nil {
		return nil, err
	}
	pause, err := os.ReadFile(t.pause)
	if err != nil {
		return nil, err
	}
	sh := []string{"sh"}
	imgs := []image{
		// The default test image and the benchmarks' image list.
		{refs: []string{k8sTestImages + "busybox:1.29-2"}, spec: testimage.Spec{Name: "busybox", Cmd: sh}},
		{refs: []string{ecrLibrary + "busybox:1", ecrLibrary + "busybox:1-musl", ecrLibrary + "busybox:1-uclibc",
			ecrLibrary + "busybox:1-glibc", ecrLibrary + "busybox:1.35.0-glibc", "docker.io/library/busybox:latest"},
			spec: testimage.Spec{Name: "busybox-library", Cmd: sh}},
		// Different tags, different images: a marker file per image.
		{refs: []string{criTools + "test-image-1:latest"}, spec: marker("test-image-1")},
		{refs: []string{criTools + "test-image-2:latest"}, spec: marker("test-image-2")},
		{refs: []string{criTools + "test-image-3:latest"}, spec: marker("test-image-3")},
		{refs: []string{criTools + "test-image-latest:latest"}, spec: marker("test-image-latest")},
		{refs: []string{criTools + "test-image-digest:latest"}, spec: marker("test-image-digest")},
		{refs: []string{criTools + "test-image-tag:test"}, spec: marker("test-image-tag-test")},
		{refs: []string{criTools + "test-image-tag:all"}, spec: marker("test-image-tag-all")},
		// Different tags, one image.
		{refs: []string{criTools + "test-image-tags:1", criTools + "test-image-tags:2", criTools + "test-image-tags:3"},
			spec: marker("test-image-tags")},
		// Image USER in its four forms.
		{refs: []string{criTools + "test-image-user-uid:latest"}, spec: user("test-image-user-uid", "1002")},
		{refs: []string{criTools + "test-image-user-username:latest"}, spec: user("test-image-user-username", "www-data")},
		{refs: []string{criTools + "test-image-user-uid-group:latest"}, spec: user("test-image-user-uid-group", "1003:1004")},
		{refs: []string{criTools + "test-image-user-username-group:latest"}, spec: user("test-image-user-username-group", "www-data:1004")},
		// A user whose supplementary group only the image's /etc/group knows.
		{refs: []string{criTools + "test-image-predefined-group:latest"}, spec: testimage.Spec{
			Name: "test-image-predefined-group", Cmd: sh, User: "1000",
			Files: []testimage.File{
				{Path: "/etc/passwd", Content: testimage.OfficialPasswd + ("default-user:x:1000:1000:Linux User,,,:/home/default-user:/bin/sh\n")},
				{Path: "/etc/group", Content: testimage.OfficialGroup + ("default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n")},
			}}},
		// Web servers.
		{refs: []string{k8sTestImages + "nginx:1.14-2"}, spec: nginxSpec("nginx", 80, nginx)},
		{refs: []string{criTools + "hostnet-nginx-amd64:latest"}, spec: nginxSpec("hostnet-nginx", 12003, nginx), single: true},
		{refs: []string{k8sTestImages + "httpd:2.4.39-4"}, spec: testimage.Spec{
			Name: "httpd", Cmd: []string{"httpd-foreground"}, WorkingDir: "/usr/local/apache2",
			Files: []testimage.File{
				{Path: "/usr/local/bin/httpd-foreground", Mode: 0o755, Content: "#!/bin/sh\n" +
					"echo \"httpd (busybox) serving /usr/local/apache2/htdocs on port 80\"\n" +
					"exec httpd -f -v -p 80 -h /usr/local/apache2/htdocs\n"},
				{Path: "/usr/local/apache2/htdocs/index.html", Content: "<html><body><h1>It works!</h1></body></html>\n"},
			}}},
		// A setuid-root helper that tells its effective uid.
		{refs: []string{k8sTestImages + "nonewprivs:1.3"}, spec: testimage.Spec{
			Name: "nonewprivs", Entrypoint: []string{"/usr/local/bin/nnp"},
			Files: []testimage.File{{Path: "/usr/local/bin/nnp", Mode: 0o755 | os.ModeSetuid, Content: string(nnp)}},
		}},
	}
	// Pause images: berth-pause, as the real pause, runs as 65535.
	var pauseRefs []string
	for _, v := range []string{"3.6", "3.8", "3.9", "3.10", "3.10.1"} {
		pauseRefs = append(pauseRefs, "registry.k8s.io/pause:"+v, "k8s.gcr.io/pause:"+v)
	}
	imgs = append(imgs, image{refs: pauseRefs, spec: testimage.Spec{
		Name: "pause", Entrypoint: []string{"/pause"}, User: "65535:65535",
		Files: []testimage.File{{Path: "/pause", Mode: 0o755, Content: string(pause)}},
	}})
	return imgs, nil
}

func marker(name string) testimage.Spec {
	return testimage.Spec{Name: name, Cmd: []string{"sh"},
		Files: []testimage.File{{Path: "/" + name, Content: name + "\n"}}}
}

func user(name, u string) testimage.Spec {
	s := marker(name)
	s.User = u
	return s
}

func nginxSpec(name string, port int, bin []byte) testimage.Spec {
	return testimage.Spec{
		Name: name, Cmd: []string{"nginx", "-g", "daemon off;"}, StopSignal: "SIGQUIT",
		Files: []testimage.File{
			{Path: "/usr/sbin/nginx", Mode: 0o755, Content: string(bin)},
			{Path: "/etc/nginx/conf.d/default.conf", Content: fmt.Sprintf("server {\n    listen       %d;\n    server_name  localhost;\n}\n", port)},
			{Path: "/usr/share/nginx/html/index.html", Content: "<h1>Welcome to nginx!</h1>\n"},
		},
	}
}

// pushAll builds every image on the busybox base and pushes it under
// each of its names to reg (below "<host>/" for each upstream host).
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
			if err := push(reg, ref, img, im.single); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

func push(reg *testimage.Registry, ref string, img v1.Image, single bool) error {
	if !strings.Contains(ref[strings.LastIndex(ref, "/")+1:], ":") {
		ref += ":latest"
	}
	if single {
		_, _, err := reg.PushImage(ref, img)
		return err
	}
	idx, err := testimage.SingleIndex(img, false)
	if err != nil {
		return err
	}
	_, _, err = reg.PushImageIndex(ref, idx)
	return err
}
