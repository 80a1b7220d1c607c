package conformance

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkLifecycle measures what a CRI monitor does for a short-lived
// container: `create` (pid file, stdio inherited), `start`, wait for the
// init to exit (as its subreaper), `delete`. The container runs `true` with
// the base spec (pid, net, ipc, uts and mount namespaces, cgroups, default
// mounts, masked paths).
func BenchmarkLifecycle(b *testing.B) {
	if skipReason != "" {
		b.Skip(skipReason)
	}
	for _, rt := range runtimes {
		b.Run(rt.name, func(b *testing.B) {
			lc := newLifecycleBench(b, rt)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				lc.run(b, i)
			}
			b.StopTimer()
			lc.close()
		})
	}
}

// BenchmarkLifecycleInterleaved runs the same lifecycle for every runtime in
// turn within each iteration, so that a shared machine's changing load
// weighs on all of them alike, and reports each runtime's median create,
// start and delete (the wait for the init's exit is in none of them) and
// whole lifecycle, and each one's ratio to runc's when runc is there.
func BenchmarkLifecycleInterleaved(b *testing.B) {
	if skipReason != "" {
		b.Skip(skipReason)
	}
	lcs := make([]*lifecycleBench, len(runtimes))
	for i, rt := range runtimes {
		lcs[i] = newLifecycleBench(b, rt)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, lc := range lcs {
			lc.run(b, i)
		}
	}
	b.StopTimer()
	var runc *lifecycleBench
	for _, lc := range lcs {
		if lc.rt.name == "runc" {
			runc = lc
		}
	}
	for _, lc := range lcs {
		b.ReportMetric(median(lc.create), lc.rt.name+"-create-ms")
		b.ReportMetric(median(lc.start), lc.rt.name+"-start-ms")
		b.ReportMetric(median(lc.delete), lc.rt.name+"-delete-ms")
		b.ReportMetric(median(lc.total), lc.rt.name+"-ms")
		if runc != nil && lc != runc {
			b.ReportMetric(median(lc.total)/median(runc.total), lc.rt.name+"/runc")
		}
		lc.close()
	}
	b.ReportMetric(0, "ns/op") // the sum over runtimes means nothing
}

// lifecycleBench is one runtime's bundle and measurements.
type lifecycleBench struct {
	rt                           *ociRuntime
	dir, pidFile                 string
	devnull                      *os.File
	create, start, delete, total []float64 // ms
}

func newLifecycleBench(b *testing.B, rt *ociRuntime) *lifecycleBench {
	b.Helper()
	dir, err := os.MkdirTemp(workDir, "bench-")
	if err != nil {
		b.Fatal(err)
	}
	_ = os.Chmod(dir, 0o755)
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	if err := copyFile(busybox, filepath.Join(rootfs, "bin", "busybox")); err != nil {
		b.Fatal(err)
	}
	if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", "true")); err != nil {
		b.Fatal(err)
	}
	spec := baseSpec()
	spec.Process.Args = []string{"true"}
	spec.Linux.CgroupsPath = "/" + cgroupBase + "/bench-" + rt.name
	writeSpecFile(b, dir, spec)
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		b.Fatal(err)
	}
	return &lifecycleBench{rt: rt, dir: dir, pidFile: filepath.Join(dir, "pid"), devnull: devnull}
}

func (lc *lifecycleBench) run(b *testing.B, i int) {
	id := fmt.Sprintf("bench-%d-%s-%d", os.Getpid(), lc.rt.name, i)
	t0 := time.Now()
	cmd := lc.rt.command("create", "--bundle", lc.dir, "--pid-file", lc.pidFile, id)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = lc.devnull, lc.devnull, lc.devnull
	if err := cmd.Run(); err != nil {
		b.Fatalf("%s create: %v", lc.rt.name, err)
	}
	t1 := time.Now()
	pid := atoi(readFile(lc.pidFile))
	if r := lc.rt.run("start", id); r.code != 0 {
		b.Fatalf("%s start: %s", lc.rt.name, r)
	}
	t2 := time.Now()
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil {
		b.Fatalf("wait4: %v", err)
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		b.Fatalf("%s: container exited with %v", lc.rt.name, ws)
	}
	t3 := time.Now()
	if r := lc.rt.run("delete", id); r.code != 0 {
		b.Fatalf("%s delete: %s", lc.rt.name, r)
	}
	t4 := time.Now()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	lc.create = append(lc.create, ms(t1.Sub(t0)))
	lc.start = append(lc.start, ms(t2.Sub(t1)))
	lc.delete = append(lc.delete, ms(t4.Sub(t3)))
	lc.total = append(lc.total, ms(t4.Sub(t0)))
}

func (lc *lifecycleBench) close() {
	lc.devnull.Close()
	os.RemoveAll(lc.dir)
	removeCgroups(cgroupBase + "/bench-" + lc.rt.name)
}

func median(x []float64) float64 {
	if len(x) == 0 {
		return 0
	}
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	return s[len(s)/2]
}
