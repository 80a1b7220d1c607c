package conformance

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// criuPath is the CRIU for the checkpoint tests: BERTH_TEST_CRIU, or what
// `make criu` built into build/cache/criu-*/criu of this tree (Debian 12's
// criu 3.17 fails on recent kernels, so the host's is not used).
func criuPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("BERTH_TEST_CRIU"); p != "" {
		return p
	}
	found, _ := filepath.Glob("../../build/cache/criu-*/criu")
	if len(found) == 0 {
		t.Skip("CRIU is not built: run `make criu` (or set BERTH_TEST_CRIU to a criu binary)")
	}
	p, err := filepath.Abs(found[len(found)-1])
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A container counting in its shell's memory is checkpointed (and so
// stopped), then restored as a new container from the same bundle: the
// count goes on from where it was, not from 1.
func TestCheckpointRestore(t *testing.T) {
	criu := criuPath(t)
	forEachRuntime(t, func(t *testing.T, rt *ociRuntime) {
		// Every runc runs criu from PATH (runc 1.2 dropped --criu);
		// berth-runner takes runc's --criu, and PATH too.
		t.Setenv("PATH", filepath.Dir(criu)+":"+os.Getenv("PATH"))
		c := newContainer(t, rt)
		c.spec.Process.Args = []string{"sh", "-c", `i=0; while :; do i=$((i+1)); echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.05; done`}
		createQuiet(t, c)
		c.start()
		countFile := filepath.Join(c.rootfs(), "tmp", "count")
		count := func() int {
			b, _ := os.ReadFile(countFile)
			n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			return n
		}
		waitCount(t, count, 5)

		images := filepath.Join(c.bundle, "images")
		rt.mustRun(t, "checkpoint", "--image-path", images, "--work-path", filepath.Join(c.bundle, "dump-work"), c.id)
		reap(c.pid, 5*time.Second)
		c.exited = true
		at := count()
		if r := rt.run("state", c.id); r.code == 0 {
			t.Fatalf("the checkpointed container is still there: %s", r.stdout)
		}
		time.Sleep(200 * time.Millisecond)
		if n := count(); n != at {
			t.Fatalf("the count went on (%d to %d) after the checkpoint stopped the container", at, n)
		}

		restored := c.id + "-restored"
		pidFile := filepath.Join(c.bundle, "restored.pid")
		t.Cleanup(func() {
			rt.run("delete", "--force", restored)
			if b, err := os.ReadFile(pidFile); err == nil {
				pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
				reap(pid, 2*time.Second)
			}
		})
		rt.mustRun(t, "restore", "--detach", "--bundle", c.bundle, "--image-path", images,
			"--work-path", filepath.Join(c.bundle, "restore-work"), "--pid-file", pidFile, restored)
		if st, r := statusOf(rt, restored); st != "running" {
			t.Fatalf("restored container is %q: %s", st, r)
		}
		// It goes on from the checkpoint's count: a restarted shell would
		// write 1, 2, ... again.
		low := at
		waitCount(t, func() int {
			n := count()
			if n < low {
				t.Fatalf("the restored count is %d, below the checkpoint's %d: not the same memory", n, at)
			}
			return n
		}, at+5)
	})
}

// createQuiet is create with the container's stdio on /dev/null: CRIU
// cannot dump a descriptor of a host file outside the container's mounts,
// which create's files in the bundle are.
func createQuiet(t *testing.T, c *container) {
	t.Helper()
	writeSpec(t, c.bundle, c.spec)
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	pidFile := filepath.Join(c.bundle, "pid")
	cmd := c.rt.command("create", "--bundle", c.bundle, "--pid-file", pidFile, c.id)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s create: %v", c.rt.name, err)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	if c.pid, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
		t.Fatal(err)
	}
}

func waitCount(t *testing.T, count func() int, want int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for count() < want {
		if time.Now().After(deadline) {
			t.Fatalf("count %d, want %d within 30 s", count(), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// statusOf is the runtime's status of container id.
func statusOf(rt *ociRuntime, id string) (string, result) {
	r := rt.run("state", id)
	if r.code != 0 {
		return "", r
	}
	i := strings.Index(r.stdout, `"status"`)
	if i < 0 {
		return "", r
	}
	rest := strings.TrimLeft(r.stdout[i+len(`"status"`):], " :")
	if j := strings.IndexByte(rest[1:], '"'); strings.HasPrefix(rest, `"`) && j >= 0 {
		return rest[1 : 1+j], r
	}
	return "", r
}
