package conformance

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// pinNetns creates a network namespace pinned by a bind mount (as Berth's
// sandbox pins a pod's), and returns its path and inode.
func pinNetns(t *testing.T) (string, uint64) {
	t.Helper()
	dir, err := os.MkdirTemp(workDir, "netns-")
	if err != nil {
		t.Fatal(err)
	}
	pin := filepath.Join(dir, "net")
	if err := os.WriteFile(pin, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		// The thread that unshares is never given back to the Go scheduler
		// (no UnlockOSThread): it dies with its namespace.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		errc <- unix.Mount(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), pin, "", unix.MS_BIND, "")
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = unix.Unmount(pin, unix.MNT_DETACH)
		_ = os.RemoveAll(dir)
	})
	var st unix.Stat_t
	if err := unix.Stat(pin, &st); err != nil {
		t.Fatal(err)
	}
	return pin, st.Ino
}

func setNamespace(spec *specs.Spec, ns specs.LinuxNamespace) {
	for i, n := range spec.Linux.Namespaces {
		if n.Type == ns.Type {
			spec.Linux.Namespaces[i] = ns
			return
		}
	}
	spec.Linux.Namespaces = append(spec.Linux.Namespaces, ns)
}

func TestJoinNetnsByPath(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *ociRuntime) {
		pin, ino := pinNetns(t)
		c := newContainer(t, rt)
		setNamespace(c.spec, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: pin})
		out := c.sh("readlink /proc/self/ns/net")
		if want := fmt.Sprintf("net:[%d]\n", ino); out != want {
			t.Fatalf("container netns %q, want the pinned %q", out, want)
		}
	})
}

// allNamespaces is every namespace type the runtime-spec knows.
var allNamespaces = []specs.LinuxNamespaceType{
	specs.PIDNamespace, specs.NetworkNamespace, specs.MountNamespace, specs.IPCNamespace,
	specs.UTSNamespace, specs.UserNamespace, specs.CgroupNamespace, specs.TimeNamespace,
}

// nsLinkName is the /proc/PID/ns entry of a namespace type.
var nsLinkName = map[specs.LinuxNamespaceType]string{
	specs.PIDNamespace: "pid", specs.NetworkNamespace: "net", specs.MountNamespace: "mnt",
	specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts", specs.UserNamespace: "user",
	specs.CgroupNamespace: "cgroup", specs.TimeNamespace: "time",
}

func withUserNamespace(spec *specs.Spec) {
	setNamespace(spec, specs.LinuxNamespace{Type: specs.UserNamespace})
	spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	// sysfs cannot be mounted in a user namespace without its own netns
	// owner; the devices cgroup is the host's business then.
	spec.Linux.Resources.Devices = nil
}

func TestUserNamespace(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *ociRuntime) {
		c := newContainer(t, rt)
		withUserNamespace(c.spec)
		out := c.sh("cat /proc/self/uid_map /proc/self/gid_map; id -u; stat -c %u /bin/busybox")
		fields := strings.Fields(out)
		want := []string{"0", "100000", "65536", "0", "100000", "65536", "0", "65534"}
		if strings.Join(fields, " ") != strings.Join(want, " ") {
			t.Fatalf("got %q, want %q (maps, uid, and host root seen as the overflow uid)", fields, want)
		}
	})
}

func TestExecSharesNamespaces(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *ociRuntime) {
		c := newContainer(t, rt)
		types := allNamespaces
		if rt.isRuncBefore(1, 2) {
			t.Log("runc 1.1 lacks the time namespace (added in runc 1.2): checking the others")
			types = types[:len(types)-1]
		}
		for _, ns := range types {
			setNamespace(c.spec, specs.LinuxNamespace{Type: ns})
		}
		withUserNamespace(c.spec)
		c.startSleeping()
		var script []string
		for _, ns := range types {
			script = append(script, "readlink /proc/self/ns/"+nsLinkName[ns])
		}
		r := c.exec(nil, "sh", "-c", strings.Join(script, "; "))
		if r.code != 0 {
			t.Fatalf("exec: %s", r)
		}
		got := strings.Fields(r.stdout)
		for i, ns := range types {
			link := nsLinkName[ns]
			init, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", c.pid, link))
			if err != nil {
				t.Fatal(err)
			}
			host, _ := os.Readlink("/proc/self/ns/" + link)
			if i >= len(got) || got[i] != init {
				t.Errorf("%s: exec'd process in %v, the container's init in %s", link, got, init)
			}
			if init == host {
				t.Errorf("%s: the container shares the host's namespace %s", link, host)
			}
		}
	})
}

func TestCgroupNamespace(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *ociRuntime) {
		c := newContainer(t, rt)
		setNamespace(c.spec, specs.LinuxNamespace{Type: specs.CgroupNamespace})
		out := c.sh("cat /proc/self/cgroup")
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if parts := strings.SplitN(line, ":", 3); len(parts) == 3 && strings.Contains(parts[1], "memory") && parts[2] != "/" {
				t.Errorf("in a cgroup namespace the container's memory cgroup should be /: %q", line)
			}
		}
	})
}
