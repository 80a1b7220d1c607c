package stats

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// BenchmarkList100 is the collector's share of ListContainerStats and
// ListPodSandboxStats on a node of 100 containers in 10 pods: one op is a
// sample of every container (cgroup and a writable layer of 20 files) or
// of every pod (cgroup), read afresh (the cache expired), or served from
// the cache (a second poll within a second). The per-container cost is
// ns/op / 100.
func BenchmarkList100(b *testing.B) {
	for _, v := range []struct {
		name string
		v2   bool
	}{{"v2", true}, {"v1", false}} {
		root := b.TempDir()
		layers := b.TempDir()
		type ctr struct{ id, pod, cg string }
		var ctrs []ctr
		for p := range 10 {
			pod := fmt.Sprintf("/kubepods/pod%d", p)
			for c := range 10 {
				id := fmt.Sprintf("c%02d%02d", p, c)
				cg := pod + "/berth-" + id
				if v.v2 {
					fakeV2(b, root, cg, 1000, 64<<20, 8<<20, 0)
				} else {
					fakeV1(b, root, cg, 1_000_000, 64<<20, 8<<20)
				}
				dir := filepath.Join(layers, id)
				if err := os.MkdirAll(dir, 0o755); err != nil {
					b.Fatal(err)
				}
				for f := range 20 {
					if err := os.WriteFile(filepath.Join(dir, fmt.Sprint(f)), make([]byte, 1000), 0o644); err != nil {
						b.Fatal(err)
					}
				}
				ctrs = append(ctrs, ctr{id, pod, cg})
			}
			if v.v2 {
				fakeV2(b, root, pod, 1000, 64<<20, 8<<20, 0)
			} else {
				fakeV1(b, root, pod, 1_000_000, 64<<20, 8<<20)
			}
		}
		for _, cached := range []bool{false, true} {
			maxAge := time.Nanosecond
			name := v.name + "/fresh"
			if cached {
				maxAge, name = time.Hour, v.name+"/cached"
			}
			v2 := v.v2
			c := New(Options{CgroupRoot: root, CgroupV2: &v2, MaxAge: maxAge,
				WritableLayer: func(id string) (string, string, error) { return filepath.Join(layers, id), "/", nil }})
			b.Run("containers/"+name, func(b *testing.B) {
				cpu := cpuTime()
				for b.Loop() {
					for _, x := range ctrs {
						if _, err := c.Container(context.Background(), x.id, x.cg); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100, "ns/container")
				b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N)/100, "cpu-ns/container")
			})
			b.Run("pods/"+name, func(b *testing.B) {
				cpu := cpuTime()
				for b.Loop() {
					for p := range 10 {
						if _, err := c.Pod(fmt.Sprint("p", p), fmt.Sprintf("/kubepods/pod%d", p), ""); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10, "ns/pod")
				b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N)/10, "cpu-ns/pod")
			})
		}
	}
}

// cpuTime is the process's user and system CPU time in nanoseconds: on a
// shared, loaded machine it says more about a read's cost than the wall
// clock, which includes waiting for a CPU.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
