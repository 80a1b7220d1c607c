package oci

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/errdefs"
)

// testRootfs is an image root with users and groups to resolve.
func testRootfs(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "etc/passwd"), []byte(
		"root:x:0:0:root:/root:/bin/sh\n"+
			"app:x:1000:1000:app:/home/app:/bin/sh\n"+
			"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "etc/group"), []byte(
		"root:x:0:\napp:x:1000:\nwheel:x:10:app\naudio:x:29:app,other\nstaff:x:50:\n"), 0o644))
	return root
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testHost() *Host {
	minAdj := -500
	return &Host{
		Capabilities:   append(slices.Clone(DefaultCapabilities), "CAP_SYS_ADMIN", "CAP_NET_ADMIN"),
		MinOOMScoreAdj: &minAdj,
		MemorySwap:     true,
	}
}

func testPod() *Pod {
	return &Pod{
		ID: "pod1", Name: "web", Namespace: "default", UID: "uid-1", Hostname: "web-0",
		NetNSPath: "/run/berth/ns/pod1/net", IPCNSPath: "/run/berth/ns/pod1/ipc", UTSNSPath: "/run/berth/ns/pod1/uts",
		ResolvConfPath: "/var/lib/berth/pods/pod1/resolv.conf", HostsPath: "/var/lib/berth/pods/pod1/hosts",
		HostnamePath: "/var/lib/berth/pods/pod1/hostname", ShmPath: "/run/berth/pods/pod1/shm",
		CgroupParent: "/kubepods/pod1",
	}
}

func generate(t *testing.T, cfg *runtimeapi.ContainerConfig, img ImageConfig) (*Generated, error) {
	t.Helper()
	if cfg.Metadata == nil {
		cfg.Metadata = &runtimeapi.ContainerMetadata{Name: "c"}
	}
	return Generate(&SpecOptions{ID: "ctr1", Config: cfg, Pod: testPod(), Image: img, Rootfs: testRootfs(t), Host: testHost()})
}

func mustGenerate(t *testing.T, cfg *runtimeapi.ContainerConfig, img ImageConfig) *Generated {
	t.Helper()
	g, err := generate(t, cfg, img)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func secCtx(sc *runtimeapi.LinuxContainerSecurityContext) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{Command: []string{"/bin/sh"}, Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: sc}}
}

func TestCommandLine(t *testing.T) {
	img := ImageConfig{Entrypoint: []string{"/entry"}, Cmd: []string{"default-arg"}}
	for _, tc := range []struct {
		name          string
		command, args []string
		img           ImageConfig
		want          []string
	}{
		{"image only", nil, nil, img, []string{"/entry", "default-arg"}},
		{"args replace cmd", nil, []string{"a", "b"}, img, []string{"/entry", "a", "b"}},
		{"command replaces entrypoint and cmd", []string{"/bin/true"}, nil, img, []string{"/bin/true"}},
		{"command and args", []string{"/bin/echo"}, []string{"x"}, img, []string{"/bin/echo", "x"}},
		{"cmd only image", nil, nil, ImageConfig{Cmd: []string{"/bin/sh"}}, []string{"/bin/sh"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := commandLine(tc.command, tc.args, tc.img)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := commandLine(nil, nil, ImageConfig{}); !errdefs.IsInvalid(err) {
		t.Fatalf("no command at all: got %v, want an Invalid error", err)
	}
}

func TestEnvAndWorkdir(t *testing.T) {
	g := mustGenerate(t, &runtimeapi.ContainerConfig{
		Envs: []*runtimeapi.KeyValue{{Key: "B", Value: []byte("request")}, {Key: "C", Value: []byte("new")}},
	}, ImageConfig{Cmd: []string{"/bin/sh"}, Env: []string{"A=1", "B=image", "PATH=/image/bin"}, WorkingDir: "/srv"})
	want := []string{"A=1", "B=request", "PATH=/image/bin", "C=new", "HOSTNAME=web-0", "HOME=/root"}
	if !slices.Equal(g.Spec.Process.Env, want) {
		t.Errorf("env = %q, want %q", g.Spec.Process.Env, want)
	}
	if g.Spec.Process.Cwd != "/srv" {
		t.Errorf("cwd = %q, want the image's /srv", g.Spec.Process.Cwd)
	}

	g = mustGenerate(t, &runtimeapi.ContainerConfig{WorkingDir: "/req"}, ImageConfig{Cmd: []string{"x"}, WorkingDir: "/srv"})
	if g.Spec.Process.Cwd != "/req" {
		t.Errorf("cwd = %q, want the request's /req", g.Spec.Process.Cwd)
	}
	if !slices.Contains(g.Spec.Process.Env, defaultPath) {
		t.Errorf("env %q lacks the default PATH", g.Spec.Process.Env)
	}
	if _, err := generate(t, &runtimeapi.ContainerConfig{WorkingDir: "rel"}, ImageConfig{Cmd: []string{"x"}}); !errdefs.IsInvalid(err) {
		t.Errorf("relative working dir: got %v, want Invalid", err)
	}
	if _, err := generate(t, &runtimeapi.ContainerConfig{Command: []string{"x"}, Envs: []*runtimeapi.KeyValue{{Key: "A=B"}}}, ImageConfig{}); !errdefs.IsInvalid(err) {
		t.Errorf("env name with '=': got %v, want Invalid", err)
	}
}

func TestUser(t *testing.T) {
	i64 := func(v int64) *runtimeapi.Int64Value { return &runtimeapi.Int64Value{Value: v} }
	for _, tc := range []struct {
		name    string
		image   string
		sc      *runtimeapi.LinuxContainerSecurityContext
		want    User
		home    string
		invalid bool
	}{
		{name: "default root", want: User{0, 0, []uint32{0}}, home: "/root"},
		{name: "image name", image: "app", want: User{1000, 1000, []uint32{1000, 10, 29}}, home: "/home/app"},
		{name: "image name:group", image: "app:staff", want: User{1000, 50, []uint32{50, 10, 29}}, home: "/home/app"},
		{name: "image numeric unknown", image: "4242:4343", want: User{4242, 4343, []uint32{4343}}, home: "/"},
		{name: "image unknown name", image: "ghost", invalid: true},
		{name: "run as user wins over image", image: "app", sc: &runtimeapi.LinuxContainerSecurityContext{RunAsUser: i64(65534)},
			want: User{65534, 65534, []uint32{65534}}, home: "/nonexistent"},
		{name: "run as user and group", sc: &runtimeapi.LinuxContainerSecurityContext{RunAsUser: i64(1000), RunAsGroup: i64(7)},
			want: User{1000, 7, []uint32{7, 10, 29}}, home: "/home/app"},
		{name: "run as group without a user", image: "app", sc: &runtimeapi.LinuxContainerSecurityContext{RunAsGroup: i64(7)}, invalid: true},
		{name: "run as username", sc: &runtimeapi.LinuxContainerSecurityContext{RunAsUsername: "app"},
			want: User{1000, 1000, []uint32{1000, 10, 29}}, home: "/home/app"},
		{name: "supplemental groups", sc: &runtimeapi.LinuxContainerSecurityContext{RunAsUser: i64(1000), SupplementalGroups: []int64{3000, 10}},
			want: User{1000, 1000, []uint32{1000, 10, 29, 3000}}, home: "/home/app"},
		{name: "strict policy ignores /etc/group", sc: &runtimeapi.LinuxContainerSecurityContext{RunAsUser: i64(1000), SupplementalGroups: []int64{3000},
			SupplementalGroupsPolicy: runtimeapi.SupplementalGroupsPolicy_Strict},
			want: User{1000, 1000, []uint32{1000, 3000}}, home: "/home/app"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := generate(t, secCtx(tc.sc), ImageConfig{User: tc.image})
			if tc.invalid {
				if !errdefs.IsInvalid(err) {
					t.Fatalf("got %v, want Invalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if g.User.UID != tc.want.UID || g.User.GID != tc.want.GID || !slices.Equal(g.User.Groups, tc.want.Groups) {
				t.Errorf("user = %+v, want %+v", g.User, tc.want)
			}
			u := g.Spec.Process.User
			if u.UID != tc.want.UID || u.GID != tc.want.GID || !slices.Equal(u.AdditionalGids, tc.want.Groups) {
				t.Errorf("spec user = %+v, want %+v", u, tc.want)
			}
			if !slices.Contains(g.Spec.Process.Env, "HOME="+tc.home) {
				t.Errorf("env %q lacks HOME=%s", g.Spec.Process.Env, tc.home)
			}
		})
	}
}

func TestUserFilesStayInRootfs(t *testing.T) {
	root := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	// An image whose /etc/passwd points at the host's must not resolve
	// names from the host.
	must(t, os.Symlink("../../../../../../../../../../etc/passwd", filepath.Join(root, "etc/passwd")))
	_, err := Generate(&SpecOptions{ID: "x", Config: &runtimeapi.ContainerConfig{Command: []string{"x"}, Metadata: &runtimeapi.ContainerMetadata{Name: "c"}},
		Pod: testPod(), Image: ImageConfig{User: "root"}, Rootfs: root, Host: testHost()})
	if !errdefs.IsInvalid(err) {
		t.Fatalf("user name through a symlink out of the rootfs: got %v, want Invalid (not found)", err)
	}
}

// A FIFO, a device or a huge file as the image's /etc/passwd or
// /etc/group answers Invalid at once: it never hangs CreateContainer.
func TestUserFilesMustBeSmallRegularFiles(t *testing.T) {
	for name, plant := range map[string]func(t *testing.T, p string){
		"fifo":   func(t *testing.T, p string) { must(t, syscall.Mkfifo(p, 0o644)) },
		"device": func(t *testing.T, p string) { must(t, syscall.Mknod(p, syscall.S_IFCHR|0o644, int(1<<8|5))) }, // /dev/zero
		"huge": func(t *testing.T, p string) {
			must(t, os.WriteFile(p, nil, 0o644))
			must(t, os.Truncate(p, maxImageFile+1))
		},
		"directory": func(t *testing.T, p string) { must(t, os.Mkdir(p, 0o755)) },
	} {
		for _, file := range []string{"etc/passwd", "etc/group"} {
			t.Run(name+" "+file, func(t *testing.T) {
				root := testRootfs(t)
				p := filepath.Join(root, file)
				must(t, os.Remove(p))
				plant(t, p)
				done := make(chan error, 1)
				go func() {
					_, err := Generate(&SpecOptions{ID: "x", Config: &runtimeapi.ContainerConfig{Command: []string{"x"}, Metadata: &runtimeapi.ContainerMetadata{Name: "c"}},
						Pod: testPod(), Image: ImageConfig{User: "app:app"}, Rootfs: root, Host: testHost()})
					done <- err
				}()
				select {
				case err := <-done:
					if !errdefs.IsInvalid(err) {
						t.Fatalf("got %v, want Invalid", err)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("Generate hangs on the image's " + file)
				}
			})
		}
	}
}

// A Localhost seccomp profile that is a FIFO or too big is Invalid, at once.
func TestSeccompProfileMustBeASmallRegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.json")
	must(t, syscall.Mkfifo(fifo, 0o644))
	huge := filepath.Join(dir, "huge.json")
	must(t, os.WriteFile(huge, nil, 0o644))
	must(t, os.Truncate(huge, maxSeccompProfile+1))
	for _, p := range []string{fifo, huge, dir} {
		done := make(chan error, 1)
		go func() {
			_, err := generate(t, secCtx(&runtimeapi.LinuxContainerSecurityContext{
				Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: p}}), ImageConfig{})
			done <- err
		}()
		select {
		case err := <-done:
			if !errdefs.IsInvalid(err) {
				t.Errorf("%s: got %v, want Invalid", p, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: Generate hangs", p)
		}
	}
}

func findMount(s *rspec.Spec, dst string) *rspec.Mount {
	for i := range s.Mounts {
		if s.Mounts[i].Destination == dst {
			return &s.Mounts[i]
		}
	}
	return nil
}

func TestMounts(t *testing.T) {
	vol := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	must(t, os.Symlink(vol, link))
	hosts := filepath.Join(t.TempDir(), "kubelet-hosts")
	must(t, os.WriteFile(hosts, nil, 0o644))
	cfg := &runtimeapi.ContainerConfig{Command: []string{"x"}, Mounts: []*runtimeapi.Mount{
		{ContainerPath: "/data/inner", HostPath: vol, Readonly: true},
		{ContainerPath: "/data", HostPath: link},
		{ContainerPath: "/etc/hosts", HostPath: hosts},
	}}
	g := mustGenerate(t, cfg, ImageConfig{})
	s := g.Spec
	if m := findMount(s, "/data"); m == nil || m.Source != vol || !slices.Contains(m.Options, "rw") || !slices.Contains(m.Options, "rprivate") {
		t.Errorf("/data mount = %+v, want a private rw bind of %s (symlink resolved)", m, vol)
	}
	if m := findMount(s, "/data/inner"); m == nil || !slices.Contains(m.Options, "ro") {
		t.Errorf("/data/inner mount = %+v, want read-only", m)
	}
	var order []string
	for _, m := range s.Mounts {
		order = append(order, m.Destination)
	}
	if slices.Index(order, "/data") > slices.Index(order, "/data/inner") {
		t.Errorf("mount order %q: /data must come before /data/inner", order)
	}
	if m := findMount(s, "/etc/hosts"); m == nil || m.Source != hosts {
		t.Errorf("/etc/hosts = %+v, want kubelet's %s instead of the pod's", m, hosts)
	}
	if m := findMount(s, "/etc/resolv.conf"); m == nil || m.Source != testPod().ResolvConfPath {
		t.Errorf("/etc/resolv.conf = %+v, want the pod's", m)
	}
	if m := findMount(s, "/dev/shm"); m == nil || m.Source != testPod().ShmPath || m.Type != "bind" {
		t.Errorf("/dev/shm = %+v, want a bind of the pod's shm", m)
	}
	if m := findMount(s, "/sys"); m == nil || !slices.Contains(m.Options, "ro") {
		t.Errorf("/sys = %+v, want read-only", m)
	}
	if len(g.Mounts) != 3 || g.Mounts[1].HostPath != vol {
		t.Errorf("applied mounts = %+v", g.Mounts)
	}

	for name, m := range map[string]*runtimeapi.Mount{
		"missing host path":  {ContainerPath: "/x", HostPath: "/nonexistent/berth"},
		"relative container": {ContainerPath: "x", HostPath: vol},
		"image volume":       {ContainerPath: "/x", Image: &runtimeapi.ImageSpec{Image: "busybox"}},
		"rro without ro":     {ContainerPath: "/x", HostPath: vol, RecursiveReadOnly: true},
	} {
		if _, err := generate(t, &runtimeapi.ContainerConfig{Command: []string{"x"}, Mounts: []*runtimeapi.Mount{m}}, ImageConfig{}); !errdefs.IsInvalid(err) {
			t.Errorf("%s: got %v, want Invalid", name, err)
		}
	}
}

func TestReadonlyRootfs(t *testing.T) {
	g := mustGenerate(t, secCtx(&runtimeapi.LinuxContainerSecurityContext{ReadonlyRootfs: true}), ImageConfig{})
	if !g.Spec.Root.Readonly {
		t.Error("root is writable")
	}
	if m := findMount(g.Spec, "/etc/hosts"); m == nil || !slices.Contains(m.Options, "ro") {
		t.Errorf("/etc/hosts = %+v, want read-only with a read-only root", m)
	}
}

func TestDevices(t *testing.T) {
	g := mustGenerate(t, &runtimeapi.ContainerConfig{Command: []string{"x"}, Devices: []*runtimeapi.Device{
		{HostPath: "/dev/null", ContainerPath: "/dev/mynull", Permissions: "rw"},
	}}, ImageConfig{})
	if len(g.Spec.Linux.Devices) != 1 {
		t.Fatalf("devices = %+v", g.Spec.Linux.Devices)
	}
	d := g.Spec.Linux.Devices[0]
	if d.Path != "/dev/mynull" || d.Type != "c" || d.Major != 1 || d.Minor != 3 {
		t.Errorf("device = %+v, want c 1:3 at /dev/mynull", d)
	}
	rules := g.Spec.Linux.Resources.Devices
	last := rules[len(rules)-1]
	if !last.Allow || last.Access != "rw" || *last.Major != 1 || *last.Minor != 3 {
		t.Errorf("last device rule = %+v, want allow c 1:3 rw", last)
	}
	if rules[0].Allow || rules[0].Access != "rwm" {
		t.Errorf("first rule = %+v, want deny all", rules[0])
	}
	if _, err := generate(t, &runtimeapi.ContainerConfig{Command: []string{"x"}, CDIDevices: []*runtimeapi.CDIDevice{{Name: "vendor.com/gpu=0"}}}, ImageConfig{}); !errdefs.IsInvalid(err) {
		t.Errorf("CDI device: got %v, want Invalid", err)
	}
	for name, d := range map[string]*runtimeapi.Device{
		"not a device": {HostPath: "/etc/passwd", ContainerPath: "/dev/x"},
		"missing":      {HostPath: "/dev/berth-none", ContainerPath: "/dev/x"},
		"bad perms":    {HostPath: "/dev/null", ContainerPath: "/dev/x", Permissions: "rwx"},
	} {
		if _, err := generate(t, &runtimeapi.ContainerConfig{Command: []string{"x"}, Devices: []*runtimeapi.Device{d}}, ImageConfig{}); !errdefs.IsInvalid(err) {
			t.Errorf("%s: got %v, want Invalid", name, err)
		}
	}
}

func TestCapabilities(t *testing.T) {
	caps := func(sc *runtimeapi.LinuxContainerSecurityContext) []string {
		t.Helper()
		return mustGenerate(t, secCtx(sc), ImageConfig{}).Spec.Process.Capabilities.Bounding
	}
	if got := caps(nil); !slices.Equal(got, DefaultCapabilities) {
		t.Errorf("default caps = %q", got)
	}
	got := caps(&runtimeapi.LinuxContainerSecurityContext{Capabilities: &runtimeapi.Capability{
		AddCapabilities: []string{"net_admin"}, DropCapabilities: []string{"CAP_CHOWN", "KILL"}}})
	if slices.Contains(got, "CAP_CHOWN") || slices.Contains(got, "CAP_KILL") || !slices.Contains(got, "CAP_NET_ADMIN") {
		t.Errorf("add NET_ADMIN, drop CHOWN and KILL: got %q", got)
	}
	got = caps(&runtimeapi.LinuxContainerSecurityContext{Capabilities: &runtimeapi.Capability{
		AddCapabilities: []string{"NET_BIND_SERVICE"}, DropCapabilities: []string{"ALL"}}})
	if !slices.Equal(got, []string{"CAP_NET_BIND_SERVICE"}) {
		t.Errorf("drop ALL, add NET_BIND_SERVICE: got %q", got)
	}
	if got := caps(&runtimeapi.LinuxContainerSecurityContext{Privileged: true}); !slices.Equal(got, testHost().Capabilities) {
		t.Errorf("privileged caps = %q, want the daemon's bounding set", got)
	}
	for name, c := range map[string]*runtimeapi.Capability{
		"unknown":        {AddCapabilities: []string{"FLY"}},
		"not held":       {AddCapabilities: []string{"SYS_RESOURCE"}},
		"ambient not in": {AddAmbientCapabilities: []string{"NET_ADMIN"}},
	} {
		if _, err := generate(t, secCtx(&runtimeapi.LinuxContainerSecurityContext{Capabilities: c}), ImageConfig{}); !errdefs.IsInvalid(err) {
			t.Errorf("%s: got %v, want Invalid", name, err)
		}
	}
}

func TestPrivileged(t *testing.T) {
	s := mustGenerate(t, secCtx(&runtimeapi.LinuxContainerSecurityContext{Privileged: true}), ImageConfig{}).Spec
	if len(s.Linux.MaskedPaths) != 0 || len(s.Linux.ReadonlyPaths) != 0 {
		t.Errorf("privileged masked %q readonly %q, want none", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	if s.Linux.Seccomp != nil {
		t.Error("privileged container has a seccomp filter")
	}
	if r := s.Linux.Resources.Devices; len(r) != 1 || !r[0].Allow || r[0].Type != "" {
		t.Errorf("device rules = %+v, want allow all", r)
	}
	if m := findMount(s, "/sys"); slices.Contains(m.Options, "ro") {
		t.Errorf("privileged /sys options %q, want rw", m.Options)
	}
	var null bool
	for _, d := range s.Linux.Devices {
		null = null || d.Path == "/dev/null"
	}
	if !null {
		t.Error("privileged container lacks the host's /dev/null")
	}

	s = mustGenerate(t, secCtx(nil), ImageConfig{}).Spec
	if !slices.Equal(s.Linux.MaskedPaths, DefaultMaskedPaths) || !slices.Equal(s.Linux.ReadonlyPaths, DefaultReadonlyPaths) {
		t.Errorf("default masked %q readonly %q", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	s = mustGenerate(t, secCtx(&runtimeapi.LinuxContainerSecurityContext{MaskedPaths: []string{"/proc/x"}, ReadonlyPaths: []string{"/proc/y"}}), ImageConfig{}).Spec
	if !slices.Equal(s.Linux.MaskedPaths, []string{"/proc/x"}) || !slices.Equal(s.Linux.ReadonlyPaths, []string{"/proc/y"}) {
		t.Errorf("requested masked %q readonly %q", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
}

func TestSeccomp(t *testing.T) {
	blocks := func(sc *rspec.LinuxSeccomp, name string) bool {
		// The default profile allows by list: a syscall absent from
		// every allow rule is refused.
		for _, r := range sc.Syscalls {
			if r.Action == rspec.ActAllow && slices.Contains(r.Names, name) && len(r.Args) == 0 {
				return false
			}
		}
		return true
	}
	s := mustGenerate(t, secCtx(nil), ImageConfig{}).Spec
	if s.Linux.Seccomp != nil {
		t.Fatalf("no profile requested: seccomp = %+v, want none (the CRI's unconfined)", s.Linux.Seccomp)
	}
	o := &SpecOptions{ID: "ctr1", Config: secCtx(nil), Pod: testPod(), Rootfs: testRootfs(t), Host: testHost()}
	o.Config.Metadata = &runtimeapi.ContainerMetadata{Name: "c"}
	o.Host.SeccompDefaultWhenEmpty = true
	g, err := Generate(o)
	if err != nil {
		t.Fatal(err)
	}
	s = g.Spec
	if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != rspec.ActErrno {
		t.Fatalf("no profile requested, default when empty: seccomp = %+v, want the runtime default", s.Linux.Seccomp)
	}
	if !blocks(s.Linux.Seccomp, "mount") || blocks(s.Linux.Seccomp, "read") {
		t.Error("default profile must refuse mount (no CAP_SYS_ADMIN) and allow read")
	}
	s = mustGenerate(t, secCtx(&runtimeapi.LinuxContainerSecurityContext{
		Capabilities: &runtimeapi.Capability{AddCapabilities: []string{"SYS_ADMIN"}},
		Seccomp:      &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}}), ImageConfig{}).Spec
	if blocks(s.Linux.Seccomp, "mount") {
		t.Error("with CAP_SYS_ADMIN the default profile allows mount")
	}
	s = mustGenerate(t, secCtx(&runtimeapi.LinuxContainerSecurityContext{
		Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}}), ImageConfig{}).Spec
	if s.Linux.Seccomp != nil {
		t.Error("unconfined has a filter")
	}
	prof := filepath.Join(t.TempDir(), "profile.json")
	must(t, os.WriteFile(prof, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["chmod"],"action":"SCMP_ACT_ERRNO"}]}`), 0o644))
	s = mustGenerate(t, secCtx(&runtimeapi.LinuxContainerSecurityContext{
		Seccomp: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: prof}}), ImageConfig{}).Spec
	if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != rspec.ActAllow || len(s.Linux.Seccomp.Syscalls) != 1 {
		t.Errorf("localhost profile = %+v", s.Linux.Seccomp)
	}
	for name, p := range map[string]*runtimeapi.SecurityProfile{
		"relative": {ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "profile.json"},
		"missing":  {ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "/nonexistent/p.json"},
	} {
		if _, err := generate(t, secCtx(&runtimeapi.LinuxContainerSecurityContext{Seccomp: p}), ImageConfig{}); !errdefs.IsInvalid(err) {
			t.Errorf("%s localhost profile: got %v, want Invalid", name, err)
		}
	}
}

func TestAppArmorOff(t *testing.T) {
	_, err := generate(t, secCtx(&runtimeapi.LinuxContainerSecurityContext{
		Apparmor: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "my-profile"}}), ImageConfig{})
	if !errdefs.IsInvalid(err) {
		t.Errorf("named AppArmor profile without AppArmor: got %v, want Invalid", err)
	}
	g := mustGenerate(t, secCtx(&runtimeapi.LinuxContainerSecurityContext{
		Apparmor: &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}}), ImageConfig{})
	if g.Spec.Process.ApparmorProfile != "" {
		t.Errorf("runtime default without AppArmor: profile %q", g.Spec.Process.ApparmorProfile)
	}
}

func nsPath(s *rspec.Spec, typ rspec.LinuxNamespaceType) (string, bool) {
	for _, n := range s.Linux.Namespaces {
		if n.Type == typ {
			return n.Path, true
		}
	}
	return "", false
}

func TestNamespaces(t *testing.T) {
	pidMode := func(mode runtimeapi.NamespaceMode, target string) *runtimeapi.LinuxContainerSecurityContext {
		return &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Pid: mode, TargetId: target}}
	}
	s := mustGenerate(t, secCtx(pidMode(runtimeapi.NamespaceMode_CONTAINER, "")), ImageConfig{}).Spec
	for typ, want := range map[rspec.LinuxNamespaceType]string{
		rspec.NetworkNamespace: testPod().NetNSPath, rspec.IPCNamespace: testPod().IPCNSPath,
		rspec.UTSNamespace: testPod().UTSNSPath, rspec.PIDNamespace: "", rspec.MountNamespace: "",
	} {
		if p, ok := nsPath(s, typ); !ok || p != want {
			t.Errorf("%s namespace = %q (present %v), want %q", typ, p, ok, want)
		}
	}
	if s.Hostname != "web-0" {
		t.Errorf("hostname = %q", s.Hostname)
	}
	s = mustGenerate(t, secCtx(pidMode(runtimeapi.NamespaceMode_POD, "")), ImageConfig{}).Spec
	if p, ok := nsPath(s, rspec.PIDNamespace); !ok || p != "" {
		t.Errorf("PID mode POD in a pod without a shared PID namespace: pid namespace %q (present %v), want a new one", p, ok)
	}
	o := &SpecOptions{ID: "c", Config: secCtx(pidMode(runtimeapi.NamespaceMode_POD, "")), Pod: testPod(), Host: testHost()}
	o.Config.Metadata = &runtimeapi.ContainerMetadata{Name: "c"}
	o.Pod.PIDNSPath = "/proc/42/ns/pid"
	g, err := Generate(o)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := nsPath(g.Spec, rspec.PIDNamespace); p != "/proc/42/ns/pid" {
		t.Errorf("PID mode POD: pid namespace %q", p)
	}
	s = mustGenerate(t, secCtx(pidMode(runtimeapi.NamespaceMode_NODE, "")), ImageConfig{}).Spec
	if _, ok := nsPath(s, rspec.PIDNamespace); ok {
		t.Error("PID mode NODE has a pid namespace entry")
	}
	if _, err := generate(t, secCtx(pidMode(runtimeapi.NamespaceMode_TARGET, "other")), ImageConfig{}); !errdefs.IsInvalid(err) {
		t.Errorf("TARGET without a running target: got %v, want Invalid", err)
	}

	host := testPod()
	host.NetNSPath, host.UTSNSPath, host.IPCNSPath = "", "", ""
	g, err = Generate(&SpecOptions{ID: "c", Config: secCtx(nil), Pod: host, Host: testHost()})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := nsPath(g.Spec, rspec.NetworkNamespace); ok || g.Spec.Hostname != "" {
		t.Errorf("host network pod: netns entry %v, hostname %q; want neither", ok, g.Spec.Hostname)
	}
}

func TestResources(t *testing.T) {
	g := mustGenerate(t, &runtimeapi.ContainerConfig{Command: []string{"x"}, Linux: &runtimeapi.LinuxContainerConfig{
		Resources: &runtimeapi.LinuxContainerResources{
			CpuShares: 512, CpuQuota: 50000, CpuPeriod: 100000, CpusetCpus: "0",
			MemoryLimitInBytes: 64 << 20, MemorySwapLimitInBytes: 128 << 20, OomScoreAdj: -999,
			HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 0}},
		}}}, ImageConfig{})
	r := g.Spec.Linux.Resources
	if *r.CPU.Shares != 512 || *r.CPU.Quota != 50000 || *r.CPU.Period != 100000 || r.CPU.Cpus != "0" {
		t.Errorf("cpu = %+v", r.CPU)
	}
	if *r.Memory.Limit != 64<<20 || *r.Memory.Swap != 128<<20 {
		t.Errorf("memory = %+v", r.Memory)
	}
	if len(r.HugepageLimits) != 0 {
		t.Errorf("zero hugepage limits without the controller must be dropped: %+v", r.HugepageLimits)
	}
	if *g.Spec.Process.OOMScoreAdj != -500 {
		t.Errorf("oom_score_adj = %d, want -999 clamped to the daemon's -500", *g.Spec.Process.OOMScoreAdj)
	}
	if g.Spec.Linux.CgroupsPath != "/kubepods/pod1/berth-ctr1" {
		t.Errorf("cgroups path = %q", g.Spec.Linux.CgroupsPath)
	}
	for name, res := range map[string]*runtimeapi.LinuxContainerResources{
		"hugepages without controller": {HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 2 << 20}}},
		"unified on v1":                {Unified: map[string]string{"memory.high": "1M"}},
		"swap below memory":            {MemoryLimitInBytes: 2 << 20, MemorySwapLimitInBytes: 1 << 20},
		"negative shares":              {CpuShares: -1},
	} {
		if _, err := Resources(res, testHost()); !errdefs.IsInvalid(err) {
			t.Errorf("%s: got %v, want Invalid", name, err)
		}
	}
}

func TestAnnotations(t *testing.T) {
	cfg := &runtimeapi.ContainerConfig{Command: []string{"x"}, Metadata: &runtimeapi.ContainerMetadata{Name: "app"},
		Annotations: map[string]string{
			"a": "b", "run.oci.keep_original_groups": "1", "io.katacontainers.config.hypervisor.path": "/tmp/evil",
			AnnotationSandboxID: "forged", "example.com/allowed": "yes", "example.com/allowedx": "no",
		}, Labels: map[string]string{"l": "v"}}
	g, err := Generate(&SpecOptions{ID: "ctr1", Config: cfg, Pod: testPod(), Rootfs: testRootfs(t), Host: testHost(),
		AllowedAnnotations: []string{"a", "example.com/allowed", "run.oci.*"}})
	if err != nil {
		t.Fatal(err)
	}
	a := g.Spec.Annotations
	if a["a"] != "b" || a[AnnotationSandboxID] != "pod1" || a[AnnotationContainerName] != "app" || !strings.Contains(a[AnnotationLabels], `"l":"v"`) {
		t.Errorf("annotations = %v", a)
	}
	if a["run.oci.keep_original_groups"] != "1" || a["example.com/allowed"] != "yes" {
		t.Errorf("allowed annotations missing: %v", a)
	}
	for _, k := range []string{"io.katacontainers.config.hypervisor.path", "example.com/allowedx"} {
		if _, ok := a[k]; ok {
			t.Errorf("annotation %s is not allowed but reached the spec: %v", k, a)
		}
	}
	// No allowed_annotations: no request annotation reaches the runtime.
	g = mustGenerate(t, cfg, ImageConfig{})
	for k := range cfg.Annotations {
		if k == AnnotationSandboxID {
			continue
		}
		if _, ok := g.Spec.Annotations[k]; ok {
			t.Errorf("annotation %s reached the spec with nothing allowed", k)
		}
	}
}

// A pod whose cgroup is a systemd slice gets containers whose cgroupsPath
// is runc's slice:prefix:name, and crun is told to make no sub-cgroup
// (whatever the request says); a cgroupfs pod's containers get neither.
func TestSystemdCgroupSpec(t *testing.T) {
	cfg := &runtimeapi.ContainerConfig{Command: []string{"x"}, Metadata: &runtimeapi.ContainerMetadata{Name: "app"},
		Annotations: map[string]string{annotationSystemdSubgroup: "evil"}}
	pod := testPod()
	pod.CgroupParent = "kubepods-besteffort-pod1.slice"
	g, err := Generate(&SpecOptions{ID: "ctr1", Config: cfg, Pod: pod, Rootfs: testRootfs(t), Host: testHost(),
		AllowedAnnotations: []string{"run.oci.*"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := g.Spec.Linux.CgroupsPath; got != "kubepods-besteffort-pod1.slice:berth:ctr1" {
		t.Errorf("cgroups path = %q", got)
	}
	if v, ok := g.Spec.Annotations[annotationSystemdSubgroup]; !ok || v != "" {
		t.Errorf("%s = %q (set %v), want empty", annotationSystemdSubgroup, v, ok)
	}
	g = mustGenerate(t, &runtimeapi.ContainerConfig{Command: []string{"x"}}, ImageConfig{})
	if _, ok := g.Spec.Annotations[annotationSystemdSubgroup]; ok {
		t.Errorf("a cgroupfs pod's container has %s", annotationSystemdSubgroup)
	}
	rt := Runtime{Path: "/usr/bin/crun"}.forPod(pod.CgroupParent)
	if !rt.SystemdCgroup || strings.Join(rt.globalArgs(), " ") != "--systemd-cgroup" {
		t.Errorf("runtime for a slice pod: %+v %v", rt, rt.globalArgs())
	}
	if rt := (Runtime{}).forPod("/kubepods/pod1"); rt.SystemdCgroup || len(rt.globalArgs()) != 0 {
		t.Errorf("runtime for a cgroupfs pod: %+v", rt)
	}
}
