package monitor

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestParseOOMKills(t *testing.T) {
	v1 := "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"
	v2 := "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n"
	for name, tc := range map[string]struct {
		in   string
		want uint64
		ok   bool
	}{
		"v1 memory.oom_control": {v1, 3, true},
		"v2 memory.events":      {v2, 1, true},
		"v1 before 4.13":        {"oom_kill_disable 0\nunder_oom 0\n", 0, false},
		"garbage value":         {"oom_kill x\n", 0, false},
	} {
		got, err := parseOOMKills([]byte(tc.in))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%s: got %d, %v; want %d, ok=%v", name, got, err, tc.want, tc.ok)
		}
	}
}

func TestOOMCounterFiles(t *testing.T) {
	for name, file := range map[string]string{"v1": "memory.oom_control", "v2": "memory.events"} {
		dir := t.TempDir()
		p := filepath.Join(dir, file)
		os.WriteFile(p, []byte("oom 0\noom_kill 0\n"), 0o644)
		c, err := openOOMCounter(dir)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		os.WriteFile(p, []byte("oom 1\noom_kill 2\n"), 0o644)
		n, err := c.kills()
		c.close()
		if err != nil || n != 2 {
			t.Fatalf("%s: kills = %d, %v; want 2", name, n, err)
		}
	}
	if _, err := openOOMCounter(t.TempDir()); !os.IsNotExist(unwrapAll(err)) {
		t.Fatalf("no counter: %v, want not-exist", err)
	}
}

// A counter whose cgroup goes away (systemd removes an emptied scope, and
// its open files then fail to read) answers the count it read when the
// kernel notified a change.
func TestOOMCounterKeepsWhatItSaw(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "memory.events")
	os.WriteFile(p, []byte("oom 0\noom_kill 0\n"), 0o644)
	c, err := openOOMCounter(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	c.watch()
	if c.notify == nil {
		t.Fatal("no inotify watch on the counter")
	}
	os.WriteFile(p, []byte("oom 1\noom_kill 1\n"), 0o644)
	deadline := time.Now().Add(10 * time.Second)
	for c.seen.Load() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the change was not seen")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The cgroup is gone: reading the open file fails.
	c.f.Close()
	if n, err := c.kills(); err != nil || n != 1 {
		t.Fatalf("kills after the cgroup went = %d, %v; want the 1 seen", n, err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

const hybridMountinfo = `24 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
25 24 0:23 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:8 - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate
31 25 0:29 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,memory
32 25 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpu,cpuacct
`

const unifiedMountinfo = `24 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 24 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`

func TestFindMemoryCgroup(t *testing.T) {
	for _, tc := range []struct {
		name, cgroup, mountinfo, want string
	}{
		{"v1 hybrid prefers v1 memory", "12:memory:/berth/abc\n3:cpu,cpuacct:/berth/abc\n0::/berth/abc\n", hybridMountinfo, "/sys/fs/cgroup/memory/berth/abc"},
		{"v2 unified", "0::/kubepods/pod1/abc\n", unifiedMountinfo, "/sys/fs/cgroup/kubepods/pod1/abc"},
		{"v1 mount with a non-root root (cgroup namespace)", "4:memory:/outer/berth/abc\n",
			"31 25 0:29 /outer /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n", "/sys/fs/cgroup/memory/berth/abc"},
		{"escaped mountpoint", "0::/c\n", `26 24 0:24 / /mnt/cg\040two rw - cgroup2 cgroup2 rw` + "\n", "/mnt/cg two/c"},
	} {
		got, err := findMemoryCgroup([]byte(tc.cgroup), strings.NewReader(tc.mountinfo))
		if err != nil || got != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
	// A node's table: hundreds of overlay lines, some longer than the
	// scanner's first buffer, before the cgroup mounts.
	var busy strings.Builder
	for i := range 500 {
		busy.WriteString("100 25 0:99 / /var/lib/berth/storage/overlay/" + strconv.Itoa(i) + "/merged rw - overlay overlay rw,lowerdir=" +
			strings.Repeat("/var/lib/berth/storage/overlay/l/ABCDEFGHIJ:", 1+i%300) + "x\n")
	}
	busy.WriteString(hybridMountinfo)
	if got, err := findMemoryCgroup([]byte("12:memory:/berth/abc\n"), strings.NewReader(busy.String())); err != nil || got != "/sys/fs/cgroup/memory/berth/abc" {
		t.Errorf("busy mount table: got %q, %v", got, err)
	}
	if _, err := findMemoryCgroup([]byte("4:memory:/x\n"), strings.NewReader(unifiedMountinfo)); err == nil {
		t.Error("v1 memory path without a v1 memory mount: no error")
	}
}

// A counter whose cgroup went before any change was seen (the kernel's
// notification came after systemd removed the scope) falls back to the
// parent's hierarchical count, for an init killed by SIGKILL only.
func TestOOMCounterParentFallback(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "berth-1.scope")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(dir, kills string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "memory.events"), []byte("oom 0\noom_kill "+kills+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name          string
		parentAtExit  string
		sigkill, want bool
		wantErr       bool
	}{
		{"sibling count unchanged", "5", true, false, false},
		{"parent rose, init SIGKILLed", "6", true, true, false},
		{"parent rose, init exited otherwise", "6", false, false, true},
	} {
		write(parent, "5")
		write(dir, "0")
		c, err := openOOMCounter(dir)
		if err != nil {
			t.Fatal(err)
		}
		before, err := c.kills()
		if err != nil {
			t.Fatal(err)
		}
		write(parent, tc.parentAtExit)
		c.f.Close() // the scope is gone: its open file no longer reads
		got, err := c.killed(before, tc.sigkill)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("%s: killed = %v, %v; want %v (error %v)", tc.name, got, err, tc.want, tc.wantErr)
		}
		c.close()
	}
	// While the container's own counter reads, the parent is not asked.
	write(parent, "5")
	write(dir, "0")
	c, err := openOOMCounter(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	write(parent, "9")
	if got, err := c.killed(0, true); got || err != nil {
		t.Errorf("own counter readable and unchanged: killed = %v, %v; want false", got, err)
	}
}

// eachLine gives every line once, in order, however the reader cuts its
// data (a byte at a time, data with EOF), with lines longer than its
// first buffer, a last line without a newline, and stops when told.
func TestEachLine(t *testing.T) {
	long := strings.Repeat("x", 10000)
	text := "a\n\n" + long + "\nb c\nlast"
	want := []string{"a", "", long, "b c", "last"}
	for name, r := range map[string]func() io.Reader{
		"whole":       func() io.Reader { return strings.NewReader(text) },
		"byte a time": func() io.Reader { return iotest.OneByteReader(strings.NewReader(text)) },
		"data at EOF": func() io.Reader { return iotest.DataErrReader(strings.NewReader(text)) },
		"half":        func() io.Reader { return iotest.HalfReader(strings.NewReader(text)) },
	} {
		var got []string
		if err := eachLine(r(), func(l []byte) bool { got = append(got, string(l)); return true }); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: got %d lines %.40q, want %d", name, len(got), got, len(want))
		}
	}
	n := 0
	_ = eachLine(strings.NewReader(text), func([]byte) bool { n++; return n < 2 })
	if n != 2 {
		t.Errorf("told to stop at the second line, eachLine gave %d", n)
	}
	if err := eachLine(strings.NewReader(strings.Repeat("y", maxLine+1)), func([]byte) bool { return true }); err == nil {
		t.Error("a line over maxLine: no error")
	}
	if err := eachLine(iotest.ErrReader(errors.New("boom")), func([]byte) bool { return true }); err == nil || err.Error() != "boom" {
		t.Errorf("reader error: %v", err)
	}
}
