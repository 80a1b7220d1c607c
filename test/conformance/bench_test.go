package conformance

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

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
			dir, err := os.MkdirTemp(workDir, "bench-")
			if err != nil {
				b.Fatal(err)
			}
			defer os.RemoveAll(dir)
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
			spec.Linux.CgroupsPath = "/" + cgroupBase + "/bench"
			writeSpecFile(b, dir, spec)
			devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
			if err != nil {
				b.Fatal(err)
			}
			defer devnull.Close()
			pidFile := filepath.Join(dir, "pid")
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				id := fmt.Sprintf("bench-%d-%d", os.Getpid(), i)
				cmd := rt.command("create", "--bundle", dir, "--pid-file", pidFile, id)
				cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
				if err := cmd.Run(); err != nil {
					b.Fatalf("create: %v", err)
				}
				pid := atoi(readFile(pidFile))
				if r := rt.run("start", id); r.code != 0 {
					b.Fatalf("start: %s", r)
				}
				var ws unix.WaitStatus
				if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil {
					b.Fatalf("wait4: %v", err)
				}
				if !ws.Exited() || ws.ExitStatus() != 0 {
					b.Fatalf("container exited with %v", ws)
				}
				if r := rt.run("delete", id); r.code != 0 {
					b.Fatalf("delete: %s", r)
				}
			}
			b.StopTimer()
			removeCgroups(cgroupBase + "/bench")
		})
	}
}
