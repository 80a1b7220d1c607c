package conformance

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestRuntimeBinaryNotWritable is the CVE-2019-5736 attack: a created
// container's pid 1 is the runtime itself, waiting to exec the user's
// program. A process exec'd into the container, with every capability the
// caller has, opens /proc/1/exe, waits until pid 1 has become the user's
// program (so the binary is no longer busy), then reopens that descriptor
// for writing through /proc/self/fd. The runtime must have given pid 1 a
// sealed copy (memfd or read-only overlay), never its own file. The test
// runs a copy of the runtime, so a vulnerable one damages nothing.
func TestRuntimeBinaryNotWritable(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, real *ociRuntime) {
		dir, err := os.MkdirTemp(workDir, "bin-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		_ = os.Chmod(dir, 0o755)
		rt := *real
		rt.path = filepath.Join(dir, filepath.Base(real.path))
		if err := copyExecutable(real.path, rt.path); err != nil {
			t.Fatal(err)
		}
		before := fileSum(t, rt.path)

		c := newContainer(t, &rt)
		all := capNames(hostCapBnd(t))
		c.spec.Process.Capabilities.Bounding = all
		c.spec.Process.Capabilities.Effective = all
		c.spec.Process.Capabilities.Permitted = all
		c.spec.Process.NoNewPrivileges = false
		c.spec.Process.Args = []string{"sleep", "1000"}
		c.create()
		r := c.execDetached(nil, "sh", "-c", `
			exec 3</proc/1/exe || { echo open-failed > /tmp/result; exit; }
			head -c 4 <&3 | grep -q ELF && echo exe:readable > /tmp/log
			echo waiting > /tmp/result
			while [ "$(cat /proc/1/comm)" != sleep ]; do sleep 0.01; done; sleep 0.3
			{ echo pwned >> /proc/self/fd/3; } 2>>/tmp/log && echo append:WROTE >> /tmp/log
			( exec 4<>/proc/self/fd/3 && echo x >&4 ) 2>>/tmp/log && echo rdwr:WROTE >> /tmp/log
			echo done > /tmp/result`)
		if r.code != 0 {
			t.Fatalf("exec: %s", r)
		}
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if r := c.exec(nil, "cat", "/tmp/result"); r.stdout == "waiting\n" {
				break
			}
		}
		c.start()
		var log string
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if r := c.exec(nil, "cat", "/tmp/result"); r.stdout == "done\n" {
				log = c.exec(nil, "cat", "/tmp/log").stdout
				break
			}
		}
		if log == "" {
			t.Fatalf("the attack did not finish: %s", c.exec(nil, "cat", "/tmp/result", "/tmp/log"))
		}
		t.Logf("attack log: %q", log)
		if !strings.Contains(log, "exe:readable") {
			t.Errorf("/proc/1/exe was not readable: the check proves nothing")
		}
		if strings.Contains(log, "WROTE") {
			t.Errorf("the container wrote to the runtime's executable: %q", log)
		}
		if after := fileSum(t, rt.path); after != before {
			t.Fatalf("the runtime binary %s changed", rt.path)
		}
	})
}

func copyExecutable(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o755)
}

func TestNoFdLeak(t *testing.T) {
	fds := func(out string) []string {
		// "N -> target" lines of `ls -l /proc/self/fd`, without the
		// directory that ls itself has open.
		var list []string
		for _, l := range strings.Split(out, "\n") {
			f := strings.Fields(l)
			if len(f) >= 3 && f[len(f)-2] == "->" && !strings.HasSuffix(f[len(f)-1], "/fd") {
				list = append(list, f[len(f)-3]+"->"+f[len(f)-1])
			}
		}
		return list
	}
	forEachRuntime(t, func(t *testing.T, rt *ociRuntime) {
		c := newContainer(t, rt)
		extra, err := os.CreateTemp(workDir, "preserved-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.Remove(extra.Name())
		defer extra.Close()
		c.extraFiles = []*os.File{extra}
		c.spec.Process.Args = []string{"sh", "-c", "ls -l /proc/self/fd; sleep 1000"}
		c.create("--preserve-fds", "1")
		c.start()
		var got []string
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && len(got) == 0; time.Sleep(10 * time.Millisecond) {
			got = fds(readFile(c.stdout))
		}
		if len(got) != 4 || !strings.HasPrefix(got[0], "0->") || !strings.HasPrefix(got[1], "1->") ||
			!strings.HasPrefix(got[2], "2->") || !strings.HasPrefix(got[3], "3->") || !strings.Contains(got[3], "preserved-") {
			t.Errorf("container init fds %v: want stdio and the preserved fd 3 only", got)
		}
		r := c.exec(nil, "ls", "-l", "/proc/self/fd")
		if got := fds(r.stdout); len(got) != 3 {
			t.Errorf("exec'd process fds %v: want stdio only", got)
		}
	})
}

func TestSELinuxAndAppArmorLabels(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *ociRuntime) {
		if _, err := os.Stat("/sys/fs/selinux/enforce"); err == nil {
			t.Skip("SELinux is enabled on this host: label tests need a policy")
		}
		c := newContainer(t, rt)
		c.spec.Process.SelinuxLabel = "system_u:system_r:container_t:s0:c1,c2"
		r := c.tryCreate()
		if r.code == 0 || !strings.Contains(r.stderr, "selinux label is specified in config, but selinux is disabled or not supported") {
			t.Errorf("an SELinux label without SELinux: %s", r)
		}
		// An AppArmor profile that cannot be applied (no AppArmor, or no
		// such profile) fails the start, as runc does; never ignored.
		c = newContainer(t, rt)
		c.spec.Process.ApparmorProfile = "berth-conformance-no-such-profile"
		c.spec.Process.Args = []string{"true"}
		if r := c.tryCreate(); r.code == 0 {
			c.start()
			if c.wait(5*time.Second) == 0 {
				t.Errorf("a container with an AppArmor profile that cannot exist ran")
			}
		} else if !strings.Contains(r.stderr, "apparmor") {
			t.Errorf("create failed for another reason: %s", r)
		}
	})
}
