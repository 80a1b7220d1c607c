package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/test/testimage"
)

// podWith runs a pod like pod() does, with change applied to its config
// first; it is removed when the test ends.
func (e *ctrEnv) podWith(t testing.TB, handler string, change func(*runtimeapi.PodSandboxConfig)) (string, error) {
	t.Helper()
	name := fmt.Sprintf("sec-%08x", rand.Uint32())
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "e2e", Uid: "uid-" + name},
		Hostname:     name,
		LogDirectory: t.TempDir(),
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{},
		}},
	}
	change(cfg)
	resp, err := e.d.Runtime.RunPodSandbox(e.d.Ctx(t), &runtimeapi.RunPodSandboxRequest{Config: cfg, RuntimeHandler: handler})
	if err != nil {
		return "", err
	}
	id := resp.PodSandboxId
	t.Cleanup(func() {
		ctx := e.d.Ctx(t)
		if _, err := e.d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Errorf("StopPodSandbox: %v", err)
		}
		if _, err := e.d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Errorf("RemovePodSandbox: %v", err)
		}
	})
	e.podConfigs[id] = cfg
	return id, nil
}

// privilegedPod is a pod whose sandbox config is privileged, which a
// privileged container needs.
func (e *ctrEnv) privilegedPod(t testing.TB, handler string) string {
	t.Helper()
	id, err := e.podWith(t, handler, func(c *runtimeapi.PodSandboxConfig) {
		c.Linux.SecurityContext.Privileged = true
	})
	if err != nil {
		t.Fatalf("RunPodSandbox (privileged): %v", err)
	}
	return id
}

func statusFeatures(t *testing.T, e *ctrEnv) (*runtimeapi.RuntimeFeatures, map[string]*runtimeapi.RuntimeHandlerFeatures) {
	t.Helper()
	resp, err := e.d.Runtime.Status(e.d.Ctx(t), &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	handlers := map[string]*runtimeapi.RuntimeHandlerFeatures{}
	for _, h := range resp.GetRuntimeHandlers() {
		handlers[h.GetName()] = h.GetFeatures()
	}
	return resp.GetFeatures(), handlers
}

// Status says what each handler can do, truthfully: berth-runner (runc's
// libcontainer 1.5) has recursive read-only and idmapped mounts, Debian's
// runc 1.1.5 has "rro" but no idmapped mounts. The supplemental groups
// policy is Berth's own and holds for all.
func TestSecurityFeaturesAnnounced(t *testing.T) {
	e := startContainerEnv(t)
	rf, handlers := statusFeatures(t, e)
	if !rf.GetSupplementalGroupsPolicy() {
		t.Errorf("Status.features.supplemental_groups_policy is false")
	}
	for _, h := range handlerNames(t) {
		f := handlers[h]
		if f == nil {
			t.Errorf("handler %s not in Status", h)
			continue
		}
		if !f.GetRecursiveReadOnlyMounts() {
			t.Errorf("handler %s: recursive_read_only_mounts false, want true (its features list rro)", h)
		}
		wantUserns := h == "berth"
		if f.GetUserNamespaces() != wantUserns {
			t.Errorf("handler %s: user_namespaces %v, want %v", h, f.GetUserNamespaces(), wantUserns)
		}
	}
	if def, berth := handlers[""], handlers["berth"]; def == nil || berth == nil || def.GetUserNamespaces() != berth.GetUserNamespaces() {
		t.Errorf("the default handler (\"\") must report berth's features: %v vs %v", def, berth)
	}
}

// usernsHostID is where the test pods' ids start on the node: far from
// any user of this machine.
const usernsHostID = 300000

func usernsOptions(hostID, length uint32) *runtimeapi.UserNamespace {
	m := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: hostID, Length: length}}
	return &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: m, Gids: m}
}

// A pod with its own user namespace: the mapping is the one asked for, the
// pod's root is an unprivileged user on the node (a plain bind mount of a
// root-owned file stays unwritable), an idmapped volume and the root
// filesystem show the node's root-owned files as the pod root's, and
// nothing on disk is chowned.
func TestUserNamespacePod(t *testing.T) {
	e := startContainerEnv(t)
	_, handlers := statusFeatures(t, e)
	for _, h := range handlerNames(t) {
		if !handlers[h].GetUserNamespaces() {
			t.Run(h+"/refused", func(t *testing.T) {
				_, err := e.podWith(t, h, func(c *runtimeapi.PodSandboxConfig) {
					c.Linux.SecurityContext.NamespaceOptions.UsernsOptions = usernsOptions(usernsHostID, 65536)
				})
				wantCode(t, "user namespace pod on handler "+h, err, codes.InvalidArgument)
			})
			continue
		}
		t.Run(h, func(t *testing.T) { testUserNamespacePod(t, e, h) })
	}
}

func testUserNamespacePod(t *testing.T, e *ctrEnv, handler string) {
	userns := usernsOptions(usernsHostID, 65536)
	pod, err := e.podWith(t, handler, func(c *runtimeapi.PodSandboxConfig) {
		c.Linux.SecurityContext.NamespaceOptions.UsernsOptions = userns
	})
	if err != nil {
		t.Fatalf("RunPodSandbox with a user namespace: %v", err)
	}
	withUserns := func(c *runtimeapi.ContainerConfig) *runtimeapi.ContainerConfig {
		c.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{UsernsOptions: userns},
		}}
		return c
	}

	// critest's check: the container prints its uid_map.
	mapID := e.run(t, pod, withUserns(e.config("uidmap", "cat", "/proc/self/uid_map")))
	if st := e.waitExit(t, mapID); st.ExitCode != 0 {
		t.Fatalf("cat /proc/self/uid_map exited %d: %s", st.ExitCode, logText(readLog(t, st.LogPath), "stderr"))
	}
	out := logText(readLog(t, e.status(t, mapID).LogPath), "stdout")
	if !regexp.MustCompile(fmt.Sprintf(`^\s+0\s+%d\s+65536\n$`, usernsHostID)).MatchString(out) {
		t.Errorf("uid_map in the container: %q, want 0 %d 65536", out, usernsHostID)
	}

	// Host files owned by root, 0644: one bound plainly, one through an
	// idmapped mount with the pod's mappings (as kubelet asks).
	dir, err := os.MkdirTemp("", "berth-userns-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	plainDir, idmDir := filepath.Join(dir, "plain"), filepath.Join(dir, "idmapped")
	for _, d := range []string{plainDir, idmDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "rootfile"), []byte("root's\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := withUserns(e.config("sleeper", "sleep", "3600"))
	cfg.Mounts = []*runtimeapi.Mount{
		{ContainerPath: "/plain", HostPath: plainDir},
		{ContainerPath: "/idm", HostPath: idmDir, UidMappings: userns.Uids, GidMappings: userns.Gids},
	}
	id := e.run(t, pod, cfg)
	sh := func(script string) (string, int32) {
		r := e.exec(t, id, 0, "sh", "-c", script)
		return strings.TrimSpace(string(r.Stdout) + string(r.Stderr)), r.ExitCode
	}
	if out, _ := sh("id -u"); out != "0" {
		t.Errorf("id -u in the container: %q, want 0", out)
	}
	// Its root filesystem is the pod's root's and the node's root's
	// only: another local user cannot list it (issue 23; round 1 opened
	// the layer directory to everyone).
	if rootfs := e.info(t, id).RuntimeSpec.Root.Path; rootfs != "" {
		ls := exec.Command("ls", rootfs)
		ls.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		if out, err := ls.CombinedOutput(); err == nil {
			t.Errorf("user nobody lists the container's root filesystem %s:\n%s", rootfs, out)
		}
	}
	// On the node, the container's root is the mapped id.
	pid := e.info(t, id).Pid
	if got := procStatusField(t, fmt.Sprintf("/proc/%d/status", pid), "Uid"); strings.Fields(got)[0] != fmt.Sprint(usernsHostID) {
		t.Errorf("container root's uid on the node: %q, want %d", got, usernsHostID)
	}

	// Plain bind: root's file is nobody's and stays unwritable.
	if out, _ := sh("stat -c %u:%g /plain/rootfile"); out != "65534:65534" {
		t.Errorf("plain bind: root-owned file shows as %q, want the overflow id 65534:65534", out)
	}
	if out, code := sh("echo pwned >> /plain/rootfile"); code == 0 {
		t.Errorf("the pod's root wrote a node root's file through a bind mount (%q)", out)
	}
	if b, _ := os.ReadFile(filepath.Join(plainDir, "rootfile")); string(b) != "root's\n" {
		t.Errorf("host file changed: %q", b)
	}

	// Idmapped volume: root's file is the pod root's; a new file is the
	// node root's on disk; the existing file was not chowned.
	if out, _ := sh("stat -c %u:%g /idm/rootfile"); out != "0:0" {
		t.Errorf("idmapped volume: root-owned file shows as %q, want 0:0", out)
	}
	if out, code := sh("echo more >> /idm/rootfile && touch /idm/new"); code != 0 {
		t.Errorf("idmapped volume not writable by the pod's root: %s", out)
	}
	for _, f := range []string{"rootfile", "new"} {
		if uid, gid := owner(t, filepath.Join(idmDir, f)); uid != 0 || gid != 0 {
			t.Errorf("idmapped volume: %s is %d:%d on disk, want 0:0", f, uid, gid)
		}
	}

	// Root filesystem: the image's files are the pod root's, writable by
	// it, and not one image file on disk changed owner.
	if out, _ := sh("stat -c %u:%g /bin/busybox /etc/passwd"); out != "0:0\n0:0" {
		t.Errorf("root filesystem: image files show as %q, want 0:0", out)
	}
	if out, code := sh("echo x > /etc/new && chown 1:1 /etc/new && stat -c %u /etc/new"); code != 0 || out != "1" {
		t.Errorf("root filesystem not the pod root's: %q (exit %d)", out, code)
	}
	busyboxes, _ := filepath.Glob(filepath.Join(e.d.Root, "storage", "overlay", "*", "diff", "bin", "busybox"))
	if len(busyboxes) == 0 {
		t.Errorf("no image layer holding bin/busybox under %s", filepath.Join(e.d.Root, "storage", "overlay"))
	}
	for _, b := range busyboxes {
		if uid, gid := owner(t, b); uid != 0 || gid != 0 {
			t.Errorf("image layer file %s is %d:%d on disk: chowned", b, uid, gid)
		}
	}

	// Files Berth writes for the pod are the pod root's; /dev/shm too.
	if out, _ := sh("stat -c %u:%g /etc/hostname /etc/resolv.conf /etc/hosts /dev/shm"); out != "0:0\n0:0\n0:0\n0:0" {
		t.Errorf("pod files show as %q, want 0:0 each", out)
	}
	if out, code := sh("touch /dev/shm/x && cat /etc/hostname >/dev/null"); code != 0 {
		t.Errorf("pod files unusable by the pod's root: %s", out)
	}
	if u := e.status(t, id).GetUser().GetLinux(); u.GetUid() != 0 || u.GetGid() != 0 {
		t.Errorf("ContainerStatus.user %v, want uid 0 gid 0 (the container's view)", u)
	}

	// A container cannot leave its pod's user namespace.
	bad := e.config("node-userns", "true")
	bad.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}},
	}}
	_, err = e.tryCreate(t, pod, bad)
	wantCode(t, "container with the node's user namespace in a userns pod", err, codes.InvalidArgument)
}

func owner(t *testing.T, path string) (uid, gid uint32) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return st.Uid, st.Gid
}

// critest's rejections: more than one mapping, container id 0 not
// mapped, and the CONTAINER and TARGET modes.
func TestUserNamespaceRejections(t *testing.T) {
	e := startContainerEnv(t)
	two := []*runtimeapi.IDMapping{{ContainerId: 0, HostId: 1000, Length: 100000}, {ContainerId: 0, HostId: 2000, Length: 100000}}
	notZero := []*runtimeapi.IDMapping{{ContainerId: 1, HostId: 1000, Length: 100000}}
	for name, u := range map[string]*runtimeapi.UserNamespace{
		"two mappings":     {Mode: runtimeapi.NamespaceMode_POD, Uids: two, Gids: two},
		"0 not mapped":     {Mode: runtimeapi.NamespaceMode_POD, Uids: notZero, Gids: notZero},
		"CONTAINER":        {Mode: runtimeapi.NamespaceMode_CONTAINER},
		"TARGET":           {Mode: runtimeapi.NamespaceMode_TARGET},
		"host root mapped": usernsOptions(0, 65536),
		// Below pod.userns_min_host_id, and over every id of the node
		// (issue 23).
		"below the floor": usernsOptions(1, 4294967294),
	} {
		_, err := e.podWith(t, "", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux.SecurityContext.NamespaceOptions.UsernsOptions = u
		})
		wantCode(t, name, err, codes.InvalidArgument)
	}
	// NODE is what a pod gets without options: accepted.
	if _, err := e.podWith(t, "", func(c *runtimeapi.PodSandboxConfig) {
		c.Linux.SecurityContext.NamespaceOptions.UsernsOptions = &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}
	}); err != nil {
		t.Errorf("user namespace NODE: %v", err)
	}
}

// A recursive read-only mount is read-only down to its submounts (a
// tmpfs mounted inside it on the host); a plain read-only one is not.
// critest's rejections: RRO without readonly, RRO with propagation.
func TestRecursiveReadOnlyMount(t *testing.T) {
	e := startContainerEnv(t)
	forEachHandler(t, e.d, func(t *testing.T, handler string) {
		pod := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)
		host, err := os.MkdirTemp("", "berth-rro-")
		if err != nil {
			t.Fatal(err)
		}
		sub := filepath.Join(host, "tmpfs")
		if err := os.Mkdir(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("none", sub, "tmpfs", 0, ""); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			unix.Unmount(sub, unix.MNT_DETACH)
			os.RemoveAll(host)
		})
		mountCfg := func(name string, m *runtimeapi.Mount) *runtimeapi.ContainerConfig {
			c := e.config(name, "sleep", "3600")
			m.HostPath, m.ContainerPath = host, "/mnt"
			c.Mounts = []*runtimeapi.Mount{m}
			return c
		}
		rro := e.run(t, pod, mountCfg("rro", &runtimeapi.Mount{Readonly: true, RecursiveReadOnly: true}))
		if r := e.exec(t, rro, 0, "touch", "/mnt/tmpfs/foo"); r.ExitCode == 0 || !strings.Contains(string(r.Stderr), "Read-only file system") {
			t.Errorf("RRO: touch in the submount: exit %d, %q; want Read-only file system", r.ExitCode, r.Stderr)
		}
		ro := e.run(t, pod, mountCfg("ro", &runtimeapi.Mount{Readonly: true}))
		if r := e.exec(t, ro, 0, "touch", "/mnt/tmpfs/file"); r.ExitCode != 0 {
			t.Errorf("plain read-only: the submount should stay writable: %q", r.Stderr)
		}
		if r := e.exec(t, ro, 0, "touch", "/mnt/top"); r.ExitCode == 0 {
			t.Errorf("plain read-only: the mount itself is writable")
		}
		for name, m := range map[string]*runtimeapi.Mount{
			"rro-rw":    {Readonly: false, RecursiveReadOnly: true},
			"rro-slave": {Readonly: true, RecursiveReadOnly: true, Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
			"rro-share": {Readonly: true, RecursiveReadOnly: true, Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL},
		} {
			_, err := e.tryCreate(t, pod, mountCfg(name, m))
			wantCode(t, name, err, codes.InvalidArgument)
		}
	})
}

// predefinedGroupImage is critest's test-image-predefined-group: user
// default-user (uid 1000) is a member of group-defined-in-image (gid
// 50000) in the image's /etc/group.
var predefinedGroupImage = testimage.Spec{
	Name: "predefined-group",
	User: "1000",
	Files: []testimage.File{
		{Path: "/etc/passwd", Content: "root:x:0:0:root:/root:/bin/sh\ndefault-user:x:1000:1000::/home/default-user:/bin/sh\n"},
		{Path: "/etc/group", Content: "root:x:0:\ndefault-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n"},
	},
}

// Merge adds the image's memberships of the user to the pod's groups,
// Strict does not; ContainerStatus.user is what the process has.
func TestSupplementalGroupsPolicy(t *testing.T) {
	e := startContainerEnv(t)
	img, err := testimage.Busybox(predefinedGroupImage)
	if err != nil {
		t.Fatal(err)
	}
	_, ref := e.reg.Push(t, "predefined-group:1", img)
	if _, err := e.d.Image.PullImage(e.d.Ctx(t), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}}); err != nil {
		t.Fatalf("pull: %v", err)
	}
	forEachHandler(t, e.d, func(t *testing.T, handler string) {
		pod := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)
		for _, tc := range []struct {
			policy runtimeapi.SupplementalGroupsPolicy
			want   []int64
		}{
			{runtimeapi.SupplementalGroupsPolicy_Merge, []int64{1000, 1234, 50000}},
			{runtimeapi.SupplementalGroupsPolicy_Strict, []int64{1000, 1234}},
		} {
			c := e.config(strings.ToLower(tc.policy.String()), "sh", "-c", "id -G; sleep 3600")
			c.Image.Image = ref
			c.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				RunAsUser:                &runtimeapi.Int64Value{Value: 1000},
				SupplementalGroups:       []int64{1234},
				SupplementalGroupsPolicy: tc.policy,
			}}
			id := e.run(t, pod, c)
			want := strings.Trim(fmt.Sprint(tc.want), "[]")
			e.waitLog(t, id, want+"\n")
			if got := strings.TrimSpace(string(e.exec(t, id, 0, "id", "-G").Stdout)); got != want {
				t.Errorf("%s: exec id -G %q, want %q", tc.policy, got, want)
			}
			u := e.status(t, id).GetUser().GetLinux()
			groups := slices.Clone(u.GetSupplementalGroups())
			slices.Sort(groups)
			if u.GetUid() != 1000 || u.GetGid() != 1000 || !slices.Equal(groups, tc.want) {
				t.Errorf("%s: ContainerStatus.user %v, want uid 1000 gid 1000 groups %v", tc.policy, u, tc.want)
			}
		}
	})
}

// ContainerStatus.user is read from the running process: the same as its
// /proc status; once it exited, the identity the spec gave it.
func TestContainerStatusUserIsTheProcess(t *testing.T) {
	e := startContainerEnv(t)
	forEachHandler(t, e.d, func(t *testing.T, handler string) {
		pod := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)
		c := e.config("groups", "sleep", "3600")
		c.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
			RunAsUser: &runtimeapi.Int64Value{Value: 4242}, RunAsGroup: &runtimeapi.Int64Value{Value: 4343},
			SupplementalGroups: []int64{7, 8},
		}}
		id := e.run(t, pod, c)
		pid := e.info(t, id).Pid
		u := e.status(t, id).GetUser().GetLinux()
		proc := strings.Fields(procStatusField(t, fmt.Sprintf("/proc/%d/status", pid), "Groups"))
		if u.GetUid() != 4242 || u.GetGid() != 4343 || fmt.Sprint(u.GetSupplementalGroups()) != "["+strings.Join(proc, " ")+"]" {
			t.Errorf("ContainerStatus.user %v; process Groups %v", u, proc)
		}
		// Once it exited, the spec's identity is reported.
		e.stop(t, id, 0)
		if u := e.status(t, id).GetUser().GetLinux(); u.GetUid() != 4242 || u.GetGid() != 4343 {
			t.Errorf("exited: ContainerStatus.user %v", u)
		}
	})
}

// A privileged container needs a privileged pod.
func TestPrivilegedContainerNeedsPrivilegedPod(t *testing.T) {
	e := startContainerEnv(t)
	forEachHandler(t, e.d, func(t *testing.T, handler string) {
		priv := func() *runtimeapi.ContainerConfig {
			c := e.config("priv", "sleep", "3600")
			c.Linux = &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{Privileged: true}}
			return c
		}
		_, err := e.tryCreate(t, e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER), priv())
		wantCode(t, "privileged container in an unprivileged pod", err, codes.InvalidArgument)
		e.run(t, e.privilegedPod(t, handler), priv())
	})
}

// A user-namespaced pod outlives a berthd crash: after a restart its
// container still runs in the pod's user namespace, a new container
// joins it, and removing the pod leaves no pin, mount or holder behind.
func TestUserNamespacePodSurvivesDaemonKill(t *testing.T) {
	e := startContainerEnv(t)
	if _, handlers := statusFeatures(t, e); !handlers["berth"].GetUserNamespaces() {
		t.Skip("handler berth does not announce user namespaces here")
	}
	userns := usernsOptions(usernsHostID+65536, 65536)
	pod, err := e.podWith(t, "berth", func(c *runtimeapi.PodSandboxConfig) {
		c.Linux.SecurityContext.NamespaceOptions.UsernsOptions = userns
	})
	if err != nil {
		t.Fatal(err)
	}
	before := e.run(t, pod, e.config("before", "sleep", "3600"))
	e.d.Kill(t)
	e.d.Restart(t)
	after := e.run(t, pod, e.config("after", "sleep", "3600"))
	for _, id := range []string{before, after} {
		out := strings.TrimSpace(string(e.exec(t, id, 0, "cat", "/proc/self/uid_map").Stdout))
		if f := strings.Fields(out); len(f) != 3 || f[1] != fmt.Sprint(usernsHostID+65536) {
			t.Errorf("container %s uid_map after the restart: %q", id[:12], out)
		}
	}
	for _, id := range []string{before, after} {
		e.stop(t, id, 0)
		if _, err := e.d.Runtime.RemoveContainer(e.d.Ctx(t), &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.d.Runtime.StopPodSandbox(e.d.Ctx(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.d.Runtime.RemovePodSandbox(e.d.Ctx(t), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(e.d.RunRoot, "ns", pod, "*")); len(left) > 0 {
		t.Errorf("pins left after RemovePodSandbox: %v", left)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), pod) {
		t.Errorf("mounts of pod %s left behind", pod[:12])
	}
}
