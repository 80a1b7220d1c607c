package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates namespaces and mounts")
	}
}

// Pinned namespaces are new, set up from inside, outlive the thread that
// made them, and go when unpinned.
func TestPinNamespaces(t *testing.T) {
	requireRoot(t)
	base := t.TempDir()
	nsDir := filepath.Join(base, "ns")
	mounted, err := makePinDir(nsDir)
	if err != nil {
		t.Fatal(err)
	}
	if !mounted {
		t.Error("makePinDir did not mount a fresh dir")
	}
	t.Cleanup(func() {
		m, _ := mountinfo.GetMounts(mountinfo.PrefixFilter(base))
		for i := len(m) - 1; i >= 0; i-- {
			unix.Unmount(m[i].Mountpoint, unix.MNT_DETACH)
		}
	})
	info, _ := mountinfo.GetMounts(mountinfo.SingleEntryFilter(nsDir))
	if len(info) != 1 || !strings.Contains(info[0].Optional, "unbindable") {
		t.Errorf("pin dir mount: %+v", info)
	}

	sc, err := parseSysctls(map[string]string{"net.ipv4.ip_unprivileged_port_start": "99"}, true, true)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(nsDir, "pod")
	pins, err := pinNamespaces(dir, []nsKind{nsNet, nsUTS, nsIPC}, func() error {
		if err := unix.Sethostname([]byte("pinned")); err != nil {
			return err
		}
		if err := loopbackUp(); err != nil {
			return err
		}
		return sc[0].apply()
	})
	if err != nil {
		t.Fatal(err)
	}
	self := map[string]string{}
	for _, k := range []string{"net", "uts", "ipc"} {
		if !isPinned(pins[k]) {
			t.Fatalf("%s not pinned at %s", k, pins[k])
		}
		var st, host unix.Stat_t
		unix.Stat(pins[k], &st)
		unix.Stat("/proc/self/ns/"+k, &host)
		if st.Ino == host.Ino {
			t.Errorf("pinned %s namespace is the host's (%d %d)", k, st.Ino, host.Ino)
		}
		self[k] = pins[k]
	}
	var uts unix.Utsname
	host, _ := os.Hostname()
	if err := unix.Uname(&uts); err != nil || unix.ByteSliceToString(uts.Nodename[:]) != host {
		t.Errorf("the host's hostname changed: %s", unix.ByteSliceToString(uts.Nodename[:]))
	}
	if b, _ := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start"); strings.TrimSpace(string(b)) == "99" {
		t.Error("the sysctl landed on the host")
	}
	// And the setup landed in the pinned namespaces.
	var podHost, podSysctl string
	if err := onThrowawayThread(func() error {
		for _, k := range []nsKind{nsNet, nsUTS} {
			fd, err := unix.Open(pins[k.name], unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			err = unix.Setns(fd, k.flag)
			unix.Close(fd)
			if err != nil {
				return err
			}
		}
		var u unix.Utsname
		if err := unix.Uname(&u); err != nil {
			return err
		}
		podHost = unix.ByteSliceToString(u.Nodename[:])
		b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
		podSysctl = strings.TrimSpace(string(b))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if podHost != "pinned" || podSysctl != "99" {
		t.Errorf("in the pinned namespaces: hostname %q, sysctl %q; want pinned, 99", podHost, podSysctl)
	}
	if err := releasePinDir(nsDir); err != nil {
		t.Fatal(err)
	}
	if ok, _ := mountinfo.Mounted(nsDir); !ok {
		t.Error("releasePinDir unmounted the dir with pins in it")
	}

	// No thread of this process stays in the pod's namespaces (the main
	// thread, which cannot end, least of all), so unpinning ends them.
	for k, p := range pins {
		var st unix.Stat_t
		unix.Stat(p, &st)
		tasks, _ := filepath.Glob("/proc/self/task/*/ns/" + k)
		for _, task := range tasks {
			var ts unix.Stat_t
			if unix.Stat(task, &ts) == nil && ts.Ino == st.Ino {
				t.Errorf("thread %s is still in the pod's %s namespace", task, k)
			}
		}
	}

	for _, p := range pins {
		if err := unpin(p); err != nil {
			t.Fatal(err)
		}
		if err := unpin(p); err != nil {
			t.Errorf("second unpin: %v", err)
		}
	}
	os.Remove(dir)
	if err := releasePinDir(nsDir); err != nil {
		t.Fatal(err)
	}
	if ok, _ := mountinfo.Mounted(nsDir); ok {
		t.Error("releasePinDir left the empty dir mounted")
	}
}
