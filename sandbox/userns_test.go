package sandbox

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/errdefs"
)

// A pod's user namespace is pinned with its network, IPC and UTS
// namespaces, which it owns; setup ran inside them; unpinning removes
// every pin and the holder process is gone.
func TestPinNamespacesInUserNS(t *testing.T) {
	requireRoot(t)
	base := t.TempDir()
	nsDir := filepath.Join(base, "ns")
	if _, err := makePinDir(nsDir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(base))
		for i := len(m) - 1; i >= 0; i-- {
			unix.Unmount(m[i].Mountpoint, unix.MNT_DETACH)
		}
	})
	u := &userNS{uids: []IDMap{{0, 400000, 65536}}, gids: []IDMap{{0, 500000, 65536}}}
	pins, err := u.pinNamespaces(filepath.Join(nsDir, "pod"), []nsKind{nsNet, nsUTS, nsIPC}, func() error {
		if err := unix.Sethostname([]byte("in-userns")); err != nil {
			return err
		}
		return loopbackUp()
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"user", "net", "uts", "ipc"} {
		if !isPinned(pins[k]) {
			t.Errorf("%s namespace not pinned at %q", k, pins[k])
		}
	}
	userIno := inode(t, pins["user"])
	if own := inode(t, "/proc/self/ns/user"); own == userIno {
		t.Fatal("the pod's user namespace is berthd's own")
	}
	for _, k := range []string{"net", "uts", "ipc"} {
		fd, err := unix.Open(pins[k], unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		owner, err := unix.IoctlRetInt(fd, unix.NS_GET_USERNS)
		unix.Close(fd)
		if err != nil {
			t.Fatalf("NS_GET_USERNS on %s: %v", k, err)
		}
		var st unix.Stat_t
		unix.Fstat(owner, &st)
		unix.Close(owner)
		if st.Ino != userIno {
			t.Errorf("%s namespace is not owned by the pod's user namespace", k)
		}
	}
	// The hostname was set inside the pinned UTS namespace.
	var uts unix.Utsname
	err = onThrowawayThread(func() error {
		if err := enterPinned(pins["uts"], unix.CLONE_NEWUTS); err != nil {
			return err
		}
		return unix.Uname(&uts)
	})
	if err != nil || unix.ByteSliceToString(uts.Nodename[:]) != "in-userns" {
		t.Errorf("hostname in the pod: %q, %v", unix.ByteSliceToString(uts.Nodename[:]), err)
	}
	// No process of ours is left in the user namespace.
	procs, _ := filepath.Glob("/proc/[0-9]*/ns/user")
	for _, p := range procs {
		var st unix.Stat_t
		if unix.Stat(p, &st) == nil && st.Ino == userIno {
			t.Errorf("a process is still in the pod's user namespace: %s", p)
		}
	}
	for _, p := range pins {
		if err := unpin(p); err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("pin %s left behind", p)
		}
	}
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// critest's rejections and the combinations a user namespace excludes.
func TestParseUserNS(t *testing.T) {
	one := func(c, h, l uint32) []*runtimeapi.IDMapping {
		return []*runtimeapi.IDMapping{{ContainerId: c, HostId: h, Length: l}}
	}
	pod := func(u, g []*runtimeapi.IDMapping) *runtimeapi.UserNamespace {
		return &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: u, Gids: g}
	}
	good := pod(one(0, 1000, 100000), one(0, 2000, 100000))
	u, err := parseUserNS(&runtimeapi.NamespaceOption{UsernsOptions: good})
	if err != nil || u == nil || u.rootUID() != 1000 || u.rootGID() != 2000 {
		t.Fatalf("good mapping: %+v, %v", u, err)
	}
	if u, err := parseUserNS(&runtimeapi.NamespaceOption{}); u != nil || err != nil {
		t.Errorf("no options: %+v, %v", u, err)
	}
	if u, err := parseUserNS(&runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_NODE}}); u != nil || err != nil {
		t.Errorf("NODE: %+v, %v", u, err)
	}
	for name, ns := range map[string]*runtimeapi.NamespaceOption{
		"two mappings":   {UsernsOptions: pod(append(one(0, 1000, 10), one(10, 5000, 10)...), one(0, 1000, 10))},
		"no gid mapping": {UsernsOptions: pod(one(0, 1000, 10), nil)},
		"0 not mapped":   {UsernsOptions: pod(one(1, 1000, 10), one(1, 1000, 10))},
		"empty":          {UsernsOptions: pod(one(0, 1000, 0), one(0, 1000, 0))},
		"overflow":       {UsernsOptions: pod(one(0, 1<<32-10, 100), one(0, 1000, 10))},
		"host root":      {UsernsOptions: pod(one(0, 0, 65536), one(0, 0, 65536))},
		"CONTAINER":      {UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_CONTAINER}},
		"TARGET":         {UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_TARGET}},
		"host network":   {UsernsOptions: good, Network: runtimeapi.NamespaceMode_NODE},
		"host IPC":       {UsernsOptions: good, Ipc: runtimeapi.NamespaceMode_NODE},
		"host PID":       {UsernsOptions: good, Pid: runtimeapi.NamespaceMode_NODE},
	} {
		if _, err := parseUserNS(ns); !errdefs.IsInvalid(err) {
			t.Errorf("%s: got %v, want Invalid", name, err)
		}
	}
}

// BenchmarkPinNamespaces compares pinning a pod's network, IPC and UTS
// namespaces on a throwaway thread with pinning them under a user
// namespace of the pod's own (a stopped child process, killed after).
func BenchmarkPinNamespaces(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	kinds := []nsKind{nsNet, nsUTS, nsIPC}
	u := &userNS{uids: []IDMap{{0, 700000, 65536}}, gids: []IDMap{{0, 700000, 65536}}}
	for _, bc := range []struct {
		name string
		pin  func(string, []nsKind, func() error) (map[string]string, error)
	}{{"node", pinNamespaces}, {"userns", u.pinNamespaces}} {
		b.Run(bc.name, func(b *testing.B) {
			dir := b.TempDir()
			for i := 0; i < b.N; i++ {
				pins, err := bc.pin(filepath.Join(dir, "pod"), kinds, loopbackUp)
				if err != nil {
					b.Fatal(err)
				}
				for _, p := range pins {
					unpin(p)
				}
			}
		})
	}
}
