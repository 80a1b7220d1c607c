package runner

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"
	devconfig "github.com/opencontainers/cgroups/devices/config"
	"github.com/opencontainers/cgroups/fs2"
)

// cgroup2Mount finds a cgroup2 hierarchy: /sys/fs/cgroup on a v2 host, or
// the (controller-less) /sys/fs/cgroup/unified of a hybrid one, which is
// enough for the eBPF device filter and the freezer.
func cgroup2Mount(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a cgroup")
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		for i, fld := range fields {
			if fld == "-" && i+1 < len(fields) && fields[i+1] == "cgroup2" && strings.HasPrefix(fields[4], "/sys/fs/cgroup") {
				return fields[4]
			}
		}
	}
	t.Skip("no cgroup2 hierarchy mounted under /sys/fs/cgroup")
	return ""
}

func realCgroup2(t *testing.T, r *cgroups.Resources) (*fs2.Manager, string) {
	t.Helper()
	dir := filepath.Join(cgroup2Mount(t), "berth-runner-test-"+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot create a cgroup2 directory: %v", err)
	}
	t.Cleanup(func() { _ = os.Remove(dir) })
	m, err := fs2.NewManager(&cgroups.Cgroup{Resources: r}, dir)
	if err != nil {
		t.Fatal(err)
	}
	return m, dir
}

// runIn runs a shell script with its process born in the cgroup dir.
func runIn(t *testing.T, dir, script string) (*exec.Cmd, *strings.Builder) {
	t.Helper()
	fd, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	var out strings.Builder
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(fd.Fd())}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out
}

func TestCgroupV2DeviceFilterReal(t *testing.T) {
	allowNull := &devconfig.Rule{Type: devconfig.CharDevice, Major: 1, Minor: 3, Permissions: "rwm", Allow: true}
	denyAll := &devconfig.Rule{Type: devconfig.WildcardDevice, Major: devconfig.Wildcard, Minor: devconfig.Wildcard, Permissions: "rwm", Allow: false}
	r := &cgroups.Resources{Devices: []*devconfig.Rule{denyAll, allowNull}}
	m, dir := realCgroup2(t, r)
	if err := m.Set(r); err != nil {
		t.Fatalf("setting the eBPF device filter: %v", err)
	}
	cmd, out := runIn(t, dir, "echo x > /dev/null && echo null:ok; head -c1 /dev/zero >/dev/null 2>&1 && echo zero:ok || echo zero:denied")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got := out.String(); !strings.Contains(got, "null:ok") || !strings.Contains(got, "zero:denied") {
		t.Fatalf("device filter: %q, want /dev/null allowed and /dev/zero denied", got)
	}
}

func TestCgroupV2FreezerReal(t *testing.T) {
	m, dir := realCgroup2(t, &cgroups.Resources{})
	cmd, _ := runIn(t, dir, "exec sleep 30")
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if err := m.Freeze(cgroups.Frozen); err != nil {
		t.Fatal(err)
	}
	if st, err := m.GetFreezerState(); err != nil || st != cgroups.Frozen {
		t.Fatalf("state %q, %v", st, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "cgroup.events")); !strings.Contains(string(b), "frozen 1") {
		t.Fatalf("cgroup.events: %q", b)
	}
	if err := m.Freeze(cgroups.Thawed); err != nil {
		t.Fatal(err)
	}
	pids, err := m.GetAllPids()
	if err != nil || len(pids) != 1 || pids[0] != cmd.Process.Pid {
		t.Fatalf("pids %v, %v; want [%d]", pids, err, cmd.Process.Pid)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if err := os.Remove(dir); err == nil || os.IsNotExist(err) {
			return
		}
	}
}
