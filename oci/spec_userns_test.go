package oci

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	rspec "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/errdefs"
)

func generateInPod(t *testing.T, pod *Pod, cfg *runtimeapi.ContainerConfig) (*Generated, error) {
	t.Helper()
	if cfg.Metadata == nil {
		cfg.Metadata = &runtimeapi.ContainerMetadata{Name: "c"}
	}
	return Generate(&SpecOptions{ID: "ctr1", Config: cfg, Pod: pod, Rootfs: testRootfs(t), Host: testHost()})
}

func criMapping(host uint32) []*runtimeapi.IDMapping {
	return []*runtimeapi.IDMapping{{ContainerId: 0, HostId: host, Length: 65536}}
}

// A container in a user-namespaced pod joins the pod's user namespace by
// path; volumes with mappings become idmapped, others stay plain; its
// root filesystem's path becomes searchable.
func TestUserNamespaceSpec(t *testing.T) {
	pod := testPod()
	pod.UserNS = &UserNS{Path: "/run/berth/ns/pod1/user", UIDs: []IDMap{{0, 300000, 65536}}, GIDs: []IDMap{{0, 300000, 65536}}}
	vol := t.TempDir()
	cfg := &runtimeapi.ContainerConfig{
		Command: []string{"sh"},
		Mounts: []*runtimeapi.Mount{
			{ContainerPath: "/idm", HostPath: vol, UidMappings: criMapping(300000), GidMappings: criMapping(300000)},
			{ContainerPath: "/plain", HostPath: vol},
		},
	}
	g, err := generateInPod(t, pod, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := nsPath(g.Spec, rspec.UserNamespace); !ok || p != pod.UserNS.Path {
		t.Errorf("user namespace %q (%v), want the pod's %s", p, ok, pod.UserNS.Path)
	}
	if len(g.Spec.Linux.UIDMappings) != 0 {
		t.Errorf("mappings given with a namespace path: %v (runtimes read them from the path)", g.Spec.Linux.UIDMappings)
	}
	for _, m := range g.Spec.Mounts {
		switch m.Destination {
		case "/idm":
			want := []rspec.LinuxIDMapping{{ContainerID: 0, HostID: 300000, Size: 65536}}
			if !slices.Equal(m.UIDMappings, want) || !slices.Equal(m.GIDMappings, want) {
				t.Errorf("/idm mappings %v %v, want %v", m.UIDMappings, m.GIDMappings, want)
			}
		case "/plain":
			if m.UIDMappings != nil || m.GIDMappings != nil {
				t.Errorf("/plain is idmapped without being asked: %+v", m)
			}
		}
	}

	// Kubelet's copy of the pod's options is accepted, others are not.
	cfg.Mounts = nil
	cfg.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{
			Mode: runtimeapi.NamespaceMode_POD, Uids: criMapping(300000), Gids: criMapping(300000)}},
	}}
	if _, err := generateInPod(t, pod, cfg); err != nil {
		t.Errorf("the pod's own options: %v", err)
	}
	for name, u := range map[string]*runtimeapi.UserNamespace{
		"NODE":           {Mode: runtimeapi.NamespaceMode_NODE},
		"other mappings": {Mode: runtimeapi.NamespaceMode_POD, Uids: criMapping(1000), Gids: criMapping(1000)},
		"CONTAINER":      {Mode: runtimeapi.NamespaceMode_CONTAINER},
	} {
		cfg.Linux.SecurityContext.NamespaceOptions.UsernsOptions = u
		if _, err := generateInPod(t, pod, cfg); !errdefs.IsInvalid(err) {
			t.Errorf("%s in a user-namespaced pod: got %v, want Invalid", name, err)
		}
	}
	cfg.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{Privileged: true}
	if _, err := generateInPod(t, pod, cfg); !errdefs.IsInvalid(err) {
		t.Errorf("privileged in a user-namespaced pod: got %v, want Invalid", err)
	}
}

// Without a pod user namespace: no user namespace, POD is refused, and so
// is an idmapped mount.
func TestUserNamespaceSpecNodePod(t *testing.T) {
	g := mustGenerate(t, secCtx(&runtimeapi.LinuxContainerSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}}}), ImageConfig{})
	if _, ok := nsPath(g.Spec, rspec.UserNamespace); ok {
		t.Error("a user namespace in a pod on the node's")
	}
	if _, err := generate(t, secCtx(&runtimeapi.LinuxContainerSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD}}}), ImageConfig{}); !errdefs.IsInvalid(err) {
		t.Errorf("POD in a pod without one: got %v, want Invalid", err)
	}
	cfg := &runtimeapi.ContainerConfig{Command: []string{"sh"}, Mounts: []*runtimeapi.Mount{
		{ContainerPath: "/idm", HostPath: t.TempDir(), UidMappings: criMapping(1000), GidMappings: criMapping(1000)}}}
	if _, err := generate(t, cfg, ImageConfig{}); !errdefs.IsInvalid(err) {
		t.Errorf("idmapped mount in a pod on the node's user namespace: got %v, want Invalid", err)
	}
}

// makeSearchable adds o+x where missing and changes nothing else.
func TestMakeSearchable(t *testing.T) {
	base := t.TempDir()
	deep := filepath.Join(base, "a", "b", "rootfs")
	must(t, os.MkdirAll(deep, 0o700))
	must(t, os.Chmod(filepath.Join(base, "a"), 0o750))
	must(t, makeSearchable(deep))
	for dir, want := range map[string]os.FileMode{
		filepath.Join(base, "a"):      0o751,
		filepath.Join(base, "a", "b"): 0o701,
		deep:                          0o700, // the root itself is the overlay's, not ours
	} {
		st, err := os.Stat(dir)
		must(t, err)
		if st.Mode().Perm() != want {
			t.Errorf("%s: mode %o, want %o", dir, st.Mode().Perm(), want)
		}
	}
}

// Recursive read-only: needs readonly and private propagation, and
// becomes the "rro" option.
func TestRecursiveReadOnlySpec(t *testing.T) {
	dir := t.TempDir()
	g := mustGenerate(t, &runtimeapi.ContainerConfig{Command: []string{"sh"}, Mounts: []*runtimeapi.Mount{
		{ContainerPath: "/rro", HostPath: dir, Readonly: true, RecursiveReadOnly: true}}}, ImageConfig{})
	for _, m := range g.Spec.Mounts {
		if m.Destination == "/rro" && (!slices.Contains(m.Options, "rro") || !slices.Contains(m.Options, "ro")) {
			t.Errorf("RRO mount options %v, want ro and rro", m.Options)
		}
	}
	for name, m := range map[string]*runtimeapi.Mount{
		"readonly false":    {Readonly: false, RecursiveReadOnly: true},
		"host to container": {Readonly: true, RecursiveReadOnly: true, Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
		"bidirectional":     {Readonly: true, RecursiveReadOnly: true, Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL},
	} {
		m.ContainerPath, m.HostPath = "/rro", dir
		_, err := generate(t, &runtimeapi.ContainerConfig{Command: []string{"sh"}, Mounts: []*runtimeapi.Mount{m}}, ImageConfig{})
		if !errdefs.IsInvalid(err) {
			t.Errorf("RRO with %s: got %v, want Invalid", name, err)
		}
	}
}

// The features documents of Debian's runc 1.1.5 (rro, no idmapped
// mounts) and of a runtime with both.
func TestParseFeatures(t *testing.T) {
	runc115 := `{"ociVersionMin":"1.0.0","ociVersionMax":"1.0.2-dev","mountOptions":["bind","ro","rro","rw"],
		"linux":{"namespaces":["cgroup","ipc","mount","network","pid","user","uts"]}}`
	both := `{"mountOptions":["rro"],"linux":{"namespaces":["user"],"mountExtensions":{"idmap":{"enabled":true}}}}`
	idmapOff := `{"mountOptions":["ro"],"linux":{"namespaces":["user"],"mountExtensions":{"idmap":{"enabled":false}}}}`
	for _, tc := range []struct {
		name, doc string
		want      HandlerFeatures
	}{
		{"runc 1.1.5", runc115, HandlerFeatures{RecursiveReadOnlyMounts: true}},
		{"both", both, HandlerFeatures{RecursiveReadOnlyMounts: true, UserNamespaces: true}},
		{"idmap disabled", idmapOff, HandlerFeatures{}},
		{"empty", `{}`, HandlerFeatures{}},
	} {
		got, err := parseFeatures([]byte(tc.doc))
		if err != nil || got != tc.want {
			t.Errorf("%s: %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
	if _, err := parseFeatures([]byte("runc: unknown command features")); err == nil {
		t.Error("a non-JSON answer parsed")
	}
}

// The process identity from a /proc directory: real ids, groups, and the
// translation out of a user namespace; a process whose parent is not the
// monitor is not trusted.
func TestReadProcessUser(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "uid_map"), []byte("         0     300000      65536\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "gid_map"), []byte("         0     400000      65536\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "status"), []byte("Name:\tsh\nPPid:\t42\n"+
		"Uid:\t301000\t301000\t301000\t301000\nGid:\t401000\t401000\t401000\t401000\nGroups:\t401000 401234 450000 \n"), 0o644))
	u, err := readProcessUser(dir, 42)
	if err != nil {
		t.Fatal(err)
	}
	if u.UID != 1000 || u.GID != 1000 || !slices.Equal(u.Groups, []uint32{1000, 1234, 50000}) {
		t.Errorf("got %+v, want uid 1000 gid 1000 groups [1000 1234 50000]", u)
	}
	if _, err := readProcessUser(dir, 43); err == nil {
		t.Error("a process of another parent was trusted")
	}
	must(t, os.WriteFile(filepath.Join(dir, "uid_map"), []byte("0 0 4294967295\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "gid_map"), []byte("0 0 4294967295\n"), 0o644))
	if u, err := readProcessUser(dir, 42); err != nil || u.UID != 301000 {
		t.Errorf("node's user namespace: %+v, %v", u, err)
	}
}

// An idmapped mount may only give the pod's ids as the pod's user
// namespace does (issue 23): a mapping to other node ids (another pod's,
// the node's root) is refused; the pod's own, or a part of it, is not.
func TestMountMappingsWithinThePods(t *testing.T) {
	pod := testPod()
	pod.UserNS = &UserNS{Path: "/run/berth/ns/pod1/user", UIDs: []IDMap{{0, 300000, 65536}}, GIDs: []IDMap{{0, 300000, 65536}}}
	vol := t.TempDir()
	for name, c := range map[string]struct {
		uids, gids []*runtimeapi.IDMapping
		ok         bool
	}{
		"the pod's":      {criMapping(300000), criMapping(300000), true},
		"a part":         {[]*runtimeapi.IDMapping{{ContainerId: 1000, HostId: 301000, Length: 10}}, criMapping(300000), true},
		"node root":      {[]*runtimeapi.IDMapping{{ContainerId: 0, HostId: 0, Length: 1}}, criMapping(300000), false},
		"another pod's":  {criMapping(400000), criMapping(300000), false},
		"shifted":        {[]*runtimeapi.IDMapping{{ContainerId: 1, HostId: 300000, Length: 10}}, criMapping(300000), false},
		"beyond":         {[]*runtimeapi.IDMapping{{ContainerId: 0, HostId: 300000, Length: 65537}}, criMapping(300000), false},
		"gids another's": {criMapping(300000), criMapping(1), false},
	} {
		_, err := generateInPod(t, pod, &runtimeapi.ContainerConfig{Command: []string{"sh"}, Mounts: []*runtimeapi.Mount{
			{ContainerPath: "/idm", HostPath: vol, UidMappings: c.uids, GidMappings: c.gids},
		}})
		if c.ok && err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if !c.ok && !errdefs.IsInvalid(err) {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
}

// A user-namespaced container's overlay layer directory is opened to the
// pod's root group only (0710), not to every local user (issue 23, item
// 3: round 1 added o+x, so anyone could read merged/ and diff/); the
// directories above get search permission only.
func TestRootfsOpenedToThePodOnly(t *testing.T) {
	base := t.TempDir()
	overlay := filepath.Join(base, "storage", "overlay")
	layer := filepath.Join(overlay, "0123abcd")
	merged := filepath.Join(layer, "merged")
	must(t, os.MkdirAll(merged, 0o700))
	must(t, os.Chmod(filepath.Join(base, "storage"), 0o700))
	pod := &UserNS{UIDs: []IDMap{{0, 300000, 65536}}, GIDs: []IDMap{{0, 310000, 65536}}}
	must(t, openRootfsToPod(merged, pod))
	st, err := os.Stat(layer)
	must(t, err)
	if st.Mode().Perm() != 0o710 || st.Sys().(*syscall.Stat_t).Gid != 310000 || st.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Errorf("layer directory %v uid %d gid %d, want 0710 root:310000", st.Mode().Perm(),
			st.Sys().(*syscall.Stat_t).Uid, st.Sys().(*syscall.Stat_t).Gid)
	}
	for _, dir := range []string{overlay, filepath.Join(base, "storage")} {
		if st, err := os.Stat(dir); err != nil || st.Mode().Perm()&0o001 == 0 || st.Mode().Perm()&0o004 != 0 && dir != overlay {
			t.Errorf("%s: %v %v, want searchable (o+x) and no more", dir, st.Mode().Perm(), err)
		}
	}
}

// cgroup_writable gives a read-write cgroupfs (the runtime then delegates
// the cgroup) only to a user-namespaced container on cgroup v2; a
// container whose root is the node's, or a v1 node, keeps it read-only.
func TestCgroupDelegationSpec(t *testing.T) {
	userns := &UserNS{Path: "/run/berth/ns/pod1/user", UIDs: []IDMap{{0, 300000, 65536}}, GIDs: []IDMap{{0, 300000, 65536}}}
	for _, tc := range []struct {
		name             string
		writable, v2, ns bool
		wantRW           bool
	}{
		{"delegated", true, true, true, true},
		{"handler without cgroup_writable", false, true, true, false},
		{"no user namespace", true, true, false, false},
		{"cgroup v1", true, false, true, false},
	} {
		pod := testPod()
		if tc.ns {
			pod.UserNS = userns
		}
		host := testHost()
		host.CgroupV2 = tc.v2
		g, err := Generate(&SpecOptions{ID: "ctr1", Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Command: []string{"sh"},
		}, Pod: pod, Rootfs: testRootfs(t), Host: host, CgroupWritable: tc.writable})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		found := false
		for _, m := range g.Spec.Mounts {
			if m.Type != "cgroup" {
				continue
			}
			found = true
			if rw := slices.Contains(m.Options, "rw") && !slices.Contains(m.Options, "ro"); rw != tc.wantRW {
				t.Errorf("%s: cgroup mount options %v, want read-write %v", tc.name, m.Options, tc.wantRW)
			}
		}
		if !found {
			t.Errorf("%s: no cgroup mount", tc.name)
		}
		switch d := g.Delegation; {
		case tc.wantRW && (d == nil || d.Owner != 300000 || !strings.HasSuffix(d.Dir, "ctr1")):
			t.Errorf("%s: delegation %+v, want the container's cgroup to node id 300000 (the pod's root)", tc.name, d)
		case !tc.wantRW && d != nil:
			t.Errorf("%s: delegation %+v, want none", tc.name, d)
		}
	}
}
