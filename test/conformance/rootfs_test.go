package conformance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestReadonlyRoot(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *ociRuntime) {
		c := newContainer(t, rt)
		c.spec.Root.Readonly = true
		out := c.sh(`if touch /evil 2>/dev/null; then echo writable; else echo readonly; fi; touch /tmp/ok 2>&1 || true; cat /proc/self/mountinfo`)
		if !strings.HasPrefix(out, "readonly\n") {
			t.Fatalf("the root is writable")
		}
		if root := parseMountInfo(out)["/"]; !hasOpt(root.options, "ro") {
			t.Errorf("/ mount options %q lack ro", root.options)
		}
	})
}

func TestMaskedAndReadonlyPaths(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *ociRuntime) {
		c := newContainer(t, rt)
		c.spec.Linux.MaskedPaths = []string{"/proc/kcore", "/proc/keys", "/proc/acpi", "/proc/timer_list", "/sys/firmware"}
		c.spec.Linux.ReadonlyPaths = []string{"/proc/sys", "/proc/irq", "/proc/bus"}
		c.spec.Process.Capabilities.Bounding = append(c.spec.Process.Capabilities.Bounding, "CAP_SYS_ADMIN")
		c.spec.Process.Capabilities.Effective = append(c.spec.Process.Capabilities.Effective, "CAP_SYS_ADMIN")
		c.spec.Process.Capabilities.Permitted = append(c.spec.Process.Capabilities.Permitted, "CAP_SYS_ADMIN")
		out := c.sh(`
			for f in /proc/kcore /proc/keys /proc/timer_list; do echo "$f:$(head -c 16 $f 2>/dev/null | wc -c)"; done
			echo "acpi:$(ls -A /proc/acpi | wc -l)"; echo "firmware:$(ls -A /sys/firmware | wc -l)"
			if echo 1 > /proc/sys/kernel/shm_rmid_forced 2>/dev/null; then echo sys:writable; else echo sys:readonly; fi
			cat /proc/self/mountinfo`)
		for _, want := range []string{"/proc/kcore:0", "/proc/keys:0", "/proc/timer_list:0", "acpi:0", "firmware:0", "sys:readonly"} {
			if !strings.Contains(out, want+"\n") {
				t.Errorf("want %q in:\n%s", want, out)
			}
		}
		mi := parseMountInfo(out)
		for _, p := range []string{"/proc/sys", "/proc/irq", "/proc/bus"} {
			if m, ok := mi[p]; !ok || !hasOpt(m.options, "ro") {
				t.Errorf("readonly path %s: mount %+v", p, m)
			}
		}
		for _, p := range []string{"/proc/acpi", "/sys/firmware"} {
			if m, ok := mi[p]; !ok || !hasOpt(m.options, "ro") || m.fsType != "tmpfs" {
				t.Errorf("masked directory %s: mount %+v, want a read-only tmpfs", p, m)
			}
		}
	})
}

func TestMounts(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *ociRuntime) {
		c := newContainer(t, rt)
		host := filepath.Join(c.bundle, "hostdir")
		if err := os.MkdirAll(filepath.Join(host, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(host, "file"), []byte("from host\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		c.spec.Mounts = append(c.spec.Mounts,
			specs.Mount{Destination: "/data", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "noexec", "size=1m", "mode=700"}},
			// inside the previous one: mounts are made in order
			specs.Mount{Destination: "/data/ro", Type: "bind", Source: host, Options: []string{"rbind", "ro", "nosuid"}},
			specs.Mount{Destination: "/rw", Type: "none", Source: host, Options: []string{"bind", "rprivate"}},
		)
		out := c.sh(`cat /data/ro/file; if touch /data/ro/x 2>/dev/null; then echo ro:writable; fi
			touch /rw/written && echo rw:ok; stat -c %a /data; cat /proc/self/mountinfo`)
		if !strings.HasPrefix(out, "from host\nrw:ok\n700\n") {
			t.Errorf("bind mounts: got %q", out[:min(40, len(out))])
		}
		if _, err := os.Stat(filepath.Join(host, "written")); err != nil {
			t.Errorf("a write through the rw bind mount did not reach the host: %v", err)
		}
		mi := parseMountInfo(out)
		for dest, want := range map[string]struct {
			fs   string
			opts []string
			sopt []string
		}{
			"/proc":          {"proc", nil, nil},
			"/dev":           {"tmpfs", []string{"nosuid"}, []string{"mode=755"}},
			"/dev/pts":       {"devpts", []string{"nosuid", "noexec"}, []string{"mode=620", "ptmxmode=666", "gid=5"}},
			"/dev/shm":       {"tmpfs", []string{"nosuid", "nodev", "noexec"}, []string{"size=65536k"}},
			"/dev/mqueue":    {"mqueue", []string{"nosuid", "nodev", "noexec"}, nil},
			"/sys":           {"sysfs", []string{"ro", "nosuid", "nodev", "noexec"}, nil},
			"/data":          {"tmpfs", []string{"nosuid", "nodev", "noexec"}, []string{"size=1024k", "mode=700"}},
			"/data/ro":       {"", []string{"ro", "nosuid"}, nil},
			"/rw":            {"", []string{"rw"}, nil},
			"/sys/fs/cgroup": {"tmpfs", []string{"nosuid", "nodev", "noexec"}, nil},
		} {
			m, ok := mi[dest]
			if !ok {
				t.Errorf("%s is not mounted", dest)
				continue
			}
			if want.fs != "" && m.fsType != want.fs {
				t.Errorf("%s: type %s, want %s", dest, m.fsType, want.fs)
			}
			if !hasOpt(m.options, want.opts...) || !hasOpt(m.superOptions, want.sopt...) {
				t.Errorf("%s: options %q / %q, want %v / %v", dest, m.options, m.superOptions, want.opts, want.sopt)
			}
		}
		// the cgroup mount: one read-only hierarchy per v1 controller
		if m, ok := mi["/sys/fs/cgroup/memory"]; ok && (!hasOpt(m.options, "ro") || m.fsType != "cgroup") {
			t.Errorf("/sys/fs/cgroup/memory: %+v, want a read-only cgroup", m)
		}
		if m := mi["/rw"]; strings.Contains(m.optional, "shared:") || strings.Contains(m.optional, "master:") {
			t.Errorf("/rw is rprivate but has propagation %q", m.optional)
		}
	})
}

func TestRootfsPropagation(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *ociRuntime) {
		for _, tc := range []struct{ prop, want string }{{"private", ""}, {"shared", "shared:"}, {"slave", "master:"}} {
			t.Run(tc.prop, func(t *testing.T) {
				if tc.prop != "private" && rt.isRuncBefore(1, 2) {
					t.Skip("runc 1.1 leaves the container's / private whatever rootfsPropagation says (as observed with Debian's 1.1.5)")
				}
				c := newContainer(t, rt)
				// The host's / may be private: make the rootfs a shared
				// mount of its own, so slave and shared mean something.
				rootfs := c.rootfs()
				if err := unix.Mount(rootfs, rootfs, "", unix.MS_BIND, ""); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = unix.Unmount(rootfs, unix.MNT_DETACH) })
				if err := unix.Mount("", rootfs, "", unix.MS_SHARED, ""); err != nil {
					t.Fatal(err)
				}
				c.spec.Linux.RootfsPropagation = tc.prop
				mi := parseMountInfo(c.sh("cat /proc/self/mountinfo"))
				opt := mi["/"].optional
				if tc.want == "" && opt != "" || tc.want != "" && !strings.Contains(opt, tc.want) {
					t.Errorf("rootfsPropagation %s: / has %q", tc.prop, opt)
				}
			})
		}
	})
}

func TestNoPivot(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *ociRuntime) {
		c := newContainer(t, rt)
		c.spec.Process.Args = []string{"sh", "-c", "ls /bin/busybox && cat /proc/self/mountinfo"}
		c.create("--no-pivot")
		c.start()
		if code := c.wait(10e9); code != 0 {
			t.Fatalf("exit %d: %s", code, readFile(c.stderr))
		}
		if _, ok := parseMountInfo(readFile(c.stdout))["/"]; !ok {
			t.Errorf("no root mount:\n%s", readFile(c.stdout))
		}
	})
}

func TestDevices(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *ociRuntime) {
		c := newContainer(t, rt)
		mode := os.FileMode(0o640)
		uid, gid := uint32(1000), uint32(1001)
		major, minor := int64(1), int64(3)
		c.spec.Linux.Devices = []specs.LinuxDevice{
			{Path: "/dev/berth-null", Type: "c", Major: 1, Minor: 3, FileMode: &mode, UID: &uid, GID: &gid},
		}
		c.spec.Linux.Resources.Devices = append(c.spec.Linux.Resources.Devices,
			specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: &major, Minor: &minor, Access: "rwm"})
		caps := append(append([]string{}, defaultCaps...), "CAP_MKNOD", "CAP_DAC_OVERRIDE")
		c.spec.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
		out := c.sh(`
			for d in null zero full random urandom tty berth-null; do echo "$d $(stat -c '%F %t:%T' /dev/$d)"; done
			stat -c '%a %u %g' /dev/berth-null
			echo x > /dev/berth-null && echo write:ok
			ls /dev/pts/ptmx >/dev/null && echo ptmx:ok
			readlink /dev/ptmx; readlink /dev/fd; readlink /dev/stdin
			mknod /tmp/mem c 1 1 && { head -c 1 /tmp/mem >/dev/null 2>&1 && echo mem:readable || echo mem:denied; }`)
		for _, want := range []string{
			"null character special file 1:3", "zero character special file 1:5",
			"full character special file 1:7", "random character special file 1:8",
			"urandom character special file 1:9", "tty character special file 5:0",
			"berth-null character special file 1:3", "640 1000 1001", "write:ok", "ptmx:ok",
			"pts/ptmx", "/proc/self/fd", "/proc/self/fd/0", "mem:denied",
		} {
			if !strings.Contains(out, want+"\n") {
				t.Errorf("want %q in:\n%s", want, out)
			}
		}
	})
}
