package stats

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func v2Collector(t testing.TB, root string, maxAge time.Duration) *Collector {
	v2 := true
	return New(Options{CgroupRoot: root, CgroupV2: &v2, MaxAge: maxAge})
}

func TestCgroupV2Sample(t *testing.T) {
	root := t.TempDir()
	const mib = 1 << 20
	setCPU := fakeV2(t, root, "/kubepods/pod1/berth-c1", 1_000_000, 100*mib, 30*mib, 256*mib)
	c := v2Collector(t, root, time.Nanosecond)

	s1, err := c.Container(context.Background(), "c1", "/kubepods/pod1/berth-c1")
	if err != nil {
		t.Fatal(err)
	}
	if s1.CPU == nil || s1.CPU.UsageNanos != 1_000_000_000 {
		t.Fatalf("cpu = %+v, want 1s of usage", s1.CPU)
	}
	if s1.CPU.NanoCores != nil {
		t.Errorf("first sample has nanocores %d: it needs two samples", *s1.CPU.NanoCores)
	}
	m := s1.Memory
	if m.Usage != 100*mib || m.WorkingSet != 70*mib || m.Limit != 256*mib || m.Available == nil || *m.Available != 186*mib {
		t.Errorf("memory = %+v (available %v), want usage 100Mi, working set 70Mi, limit 256Mi, available 186Mi", m, m.Available)
	}
	if m.RSS != 70*mib-8192 || m.PageFaults != 1234 || m.MajorPageFaults != 5 {
		t.Errorf("rss %d, faults %d/%d", m.RSS, m.PageFaults, m.MajorPageFaults)
	}
	if m.Swap == nil || m.Swap.Usage != 65536 || m.Swap.Available == nil || *m.Swap.Available != 1048576-65536 {
		t.Errorf("swap = %+v", m.Swap)
	}
	if s1.Processes == nil || *s1.Processes != 7 {
		t.Errorf("processes = %v, want 7", s1.Processes)
	}
	if s1.CPU.PSI == nil || s1.CPU.PSI.Some.Total != 123456 || s1.CPU.PSI.Some.Avg10 != 1.5 || s1.CPU.PSI.Full.Total != 2345 {
		t.Errorf("cpu PSI = %+v", s1.CPU.PSI)
	}
	if m.PSI == nil || s1.IOPSI == nil {
		t.Errorf("memory PSI %v, io PSI %v: want both", m.PSI, s1.IOPSI)
	}

	time.Sleep(20 * time.Millisecond)
	setCPU(1_500_000) // half a CPU-second more
	s2, err := c.Container(context.Background(), "c1", "/kubepods/pod1/berth-c1")
	if err != nil {
		t.Fatal(err)
	}
	if s2.CPU.NanoCores == nil || *s2.CPU.NanoCores == 0 {
		t.Fatalf("second sample has no nanocores")
	}
	dt := s2.Timestamp.Sub(s1.Timestamp)
	want := uint64(float64(500_000_000) * 1e9 / float64(dt.Nanoseconds()))
	if got := *s2.CPU.NanoCores; got < want*99/100 || got > want*101/100 {
		t.Errorf("nanocores = %d, want %d (0.5 CPU-s over %v)", got, want, dt)
	}
}

// Two polls within MaxAge read the cgroup once: the second gets the same
// sample even though the files changed.
func TestCacheServesPollsWithinMaxAge(t *testing.T) {
	root := t.TempDir()
	setCPU := fakeV2(t, root, "/p/c", 1000, 1<<20, 0, 0)
	c := v2Collector(t, root, time.Hour)
	s1, err := c.Container(context.Background(), "c", "/p/c")
	if err != nil {
		t.Fatal(err)
	}
	setCPU(5000)
	s2, err := c.Container(context.Background(), "c", "/p/c")
	if err != nil {
		t.Fatal(err)
	}
	if s1.CPU != s2.CPU || s2.CPU.UsageNanos != 1_000_000 {
		t.Errorf("second poll within max age read again: %d", s2.CPU.UsageNanos)
	}
	if s1.Memory.Available != nil || s1.Memory.Limit != 0 {
		t.Errorf("memory.max is max: want no limit, got %d / %v", s1.Memory.Limit, s1.Memory.Available)
	}
	c.Forget("c")
	if c.Cached() != 0 {
		t.Errorf("Forget left %d entries", c.Cached())
	}
	s3, _ := c.Container(context.Background(), "c", "/p/c")
	if s3.CPU.UsageNanos != 5_000_000 {
		t.Errorf("after Forget: usage %d, want a fresh read", s3.CPU.UsageNanos)
	}
}

// A container whose cgroup is gone (exited) has a sample without CPU and
// memory, not an error.
func TestGoneCgroupIsEmptySample(t *testing.T) {
	root := t.TempDir()
	c := v2Collector(t, root, time.Nanosecond)
	s, err := c.Container(context.Background(), "x", "/nothing/here")
	if err != nil {
		t.Fatal(err)
	}
	if s.CPU != nil || s.Memory != nil || s.Timestamp.IsZero() {
		t.Errorf("sample of a missing cgroup: %+v", s)
	}
	fakeV2(t, root, "/nothing/here", 10, 4096, 0, 0)
	if s, err = c.Container(context.Background(), "x", "/nothing/here"); err != nil || s.CPU == nil {
		t.Errorf("cgroup made later: %+v, %v", s, err)
	}
	if err := os.RemoveAll(filepath.Join(root, "nothing")); err != nil {
		t.Fatal(err)
	}
	if s, err = c.Container(context.Background(), "x", "/nothing/here"); err != nil || s.CPU != nil {
		t.Errorf("cgroup removed: %+v, %v", s, err)
	}
}

func TestCgroupV1Sample(t *testing.T) {
	root := t.TempDir()
	fakeV1(t, root, "/berth/pod-1/berth-c", 7_000_000_000, 50<<20, 10<<20)
	v2 := false
	c := New(Options{CgroupRoot: root, CgroupV2: &v2})
	s, err := c.Container(context.Background(), "c", "/berth/pod-1/berth-c")
	if err != nil {
		t.Fatal(err)
	}
	if s.CPU == nil || s.CPU.UsageNanos != 7_000_000_000 {
		t.Fatalf("cpu = %+v", s.CPU)
	}
	m := s.Memory
	if m.WorkingSet != 40<<20 || m.RSS != 40<<20 || m.PageFaults != 42 || m.Limit != 0 || m.Available != nil {
		t.Errorf("memory = %+v", m)
	}
	if m.Swap != nil {
		t.Errorf("swap %+v without memsw files", m.Swap)
	}
	if s.Processes == nil || *s.Processes != 3 {
		t.Errorf("processes = %v", s.Processes)
	}
}

func TestWritableLayer(t *testing.T) {
	root := t.TempDir()
	layer := filepath.Join(root, "diff")
	if err := os.MkdirAll(filepath.Join(layer, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(layer, "etc", "f"), make([]byte, 10000), 0o644); err != nil {
		t.Fatal(err)
	}
	// A symlink out of the layer is counted as a link, never followed.
	if err := os.Symlink("/usr", filepath.Join(layer, "escape")); err != nil {
		t.Fatal(err)
	}
	v2 := true
	c := New(Options{CgroupRoot: root, CgroupV2: &v2, MaxAge: time.Nanosecond,
		WritableLayer: func(id string) (string, string, error) { return layer, "/graph", nil }})
	s, err := c.Container(context.Background(), "c", "/none")
	if err != nil {
		t.Fatal(err)
	}
	if s.Disk == nil || s.Disk.UsedBytes < 10000 || s.Disk.UsedBytes > 40000 || s.Disk.Inodes != 4 || s.Disk.Mountpoint != "/graph" {
		t.Errorf("disk = %+v, want ~10000 bytes, 4 inodes (root, etc, f, escape)", s.Disk)
	}
	// The filesystem's size and free inodes, as statfs gives them.
	var fs unix.Statfs_t
	if err := unix.Statfs(layer, &fs); err != nil {
		t.Fatal(err)
	}
	if s.Disk.Capacity != fs.Blocks*uint64(fs.Bsize) || s.Disk.Capacity < s.Disk.UsedBytes || s.Disk.InodesFree == 0 {
		t.Errorf("disk = %+v, statfs %d blocks of %d", s.Disk, fs.Blocks, fs.Bsize)
	}
}
