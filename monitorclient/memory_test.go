package monitorclient_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-cri/berth/monitorclient"
)

// memory is a process's resident memory in KiB, and its thread count.
type memory struct {
	rss, pss, anon, privateDirty, threads int
}

// statusField reads one "Key: value" line of a /proc file as a number
// (the kB suffix dropped).
func statusField(tb testing.TB, pid int, file, key string) int {
	tb.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/%s", pid, file))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && k == key {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	tb.Fatalf("no %s in /proc/%d/%s", key, pid, file)
	return 0
}

func readMemory(tb testing.TB, pid int) memory {
	tb.Helper()
	return memory{
		rss:          statusField(tb, pid, "status", "VmRSS"),
		anon:         statusField(tb, pid, "status", "RssAnon"),
		threads:      statusField(tb, pid, "status", "Threads"),
		pss:          statusField(tb, pid, "smaps_rollup", "Pss"),
		privateDirty: statusField(tb, pid, "smaps_rollup", "Private_Dirty"),
	}
}

// mapping is one line of /proc/PID/smaps with its resident sizes in KiB.
type mapping struct {
	addr, perms, name         string
	size, rss, pss, privDirty int
}

func readMappings(tb testing.TB, pid int) []mapping {
	tb.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var maps []mapping
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			m := mapping{addr: fields[0], perms: fields[1]}
			if len(fields) >= 6 {
				m.name = fields[5]
			}
			lo, hi, _ := strings.Cut(fields[0], "-")
			a, _ := strconv.ParseUint(lo, 16, 64)
			b, _ := strconv.ParseUint(hi, 16, 64)
			m.size = int((b - a) >> 10)
			maps = append(maps, m)
			continue
		}
		if len(maps) == 0 || len(fields) != 3 {
			continue
		}
		n, _ := strconv.Atoi(fields[1])
		switch m := &maps[len(maps)-1]; fields[0] {
		case "Rss:":
			m.rss = n
		case "Pss:":
			m.pss = n
		case "Private_Dirty:":
			m.privDirty = n
		}
	}
	return maps
}

// logMappings prints the resident mappings of one monitor: which of its
// kilobytes are the binary's shared pages and which its own.
func logMappings(b *testing.B, name string, pid int) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s pid %d resident mappings (KiB):\n%-34s %-5s %8s %6s %6s %6s  %s\n", name, pid, "address", "perms", "size", "RSS", "PSS", "privD", "file")
	for _, m := range readMappings(b, pid) {
		if m.rss == 0 {
			continue
		}
		fmt.Fprintf(&sb, "%-34s %-5s %8d %6d %6d %6d  %s\n", m.addr, m.perms, m.size, m.rss, m.pss, m.privDirty, m.name)
	}
	b.Log(sb.String())
}

// TestMonitorStaysSmall guards against the monitor growing into something
// no 110-pod node can afford (a heavy import, a leak of buffers).
func TestMonitorStaysSmall(t *testing.T) {
	c := newCtr(t, []string{"sleep", "1000"}, nil)
	st := c.start()
	c.run()
	m := readMemory(t, st.MonitorPID)
	t.Logf("berth-monitor beside a running container: RSS %d KiB, PSS %d KiB, anonymous %d KiB", m.rss, m.pss, m.anon)
	if m.rss > 8<<10 || m.anon > 4<<10 {
		t.Fatalf("monitor uses RSS %d KiB, anonymous %d KiB: more than 8 MiB / 4 MiB", m.rss, m.anon)
	}
}

// TestMonitorBinaryDeps keeps the monitor on the standard library and
// x/sys: logrus, grpc or the CRI protobufs would triple its memory.
func TestMonitorBinaryDeps(t *testing.T) {
	if monitorBin == "" {
		t.Skip("needs root (TestMain builds the monitor only then)")
	}
	out, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "version", "-m", monitorBin).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == "dep" && f[1] != "golang.org/x/sys" {
			t.Errorf("berth-monitor links %s", f[1])
		}
	}
}

// TestMonitorImportsNoHeavyPackages keeps the monitor's own packages off
// the standard library's big ones: each is resident in every monitor
// (the kernel maps the binary's pages whole), and fmt, net and
// encoding/json together made up a third of the binary.
func TestMonitorImportsNoHeavyPackages(t *testing.T) {
	heavy := map[string]bool{"fmt": true, "log": true, "flag": true, "net": true, "encoding/json": true, "os/exec": true, "os/user": true, "context": true, "bufio": true}
	out, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "list", "-f", "{{.ImportPath}}: {{join .Imports \" \"}}",
		"github.com/berth-cri/berth/cmd/berth-monitor", "github.com/berth-cri/berth/monitor", "github.com/berth-cri/berth/atomicfile").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v: %s", err, out)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(l, ": ")
		for _, imp := range strings.Fields(imports) {
			if heavy[imp] {
				t.Errorf("%s imports %s", pkg, imp)
			}
		}
	}
}

// BenchmarkMonitorMemory runs 10 containers under berth-monitor and, when
// installed, under Debian's conmon, and reports the average memory per
// monitor. "idle" containers only sleep; "logged" ones first print 20,000
// lines (so any allocation on the log path would have made the Go
// monitor's heap grow, and a GC cycle run); "attached" ones sleep with a
// client on their attach socket. go-floor is 10 Go programs that do
// nothing, built like the monitor: the Go runtime's own share. PSS shares
// the binary's pages among the monitors, as on a node: it is the
// per-container cost. -v prints one monitor's resident mappings.
func BenchmarkMonitorMemory(b *testing.B) {
	const n = 10
	const lines = 20000
	for _, sc := range []struct {
		name     string
		args     []string
		done     string // the log's last line, once the output is all in
		attached bool   // a client stays attached while memory is read
		probes   int    // execs run through the monitor first
	}{
		{"idle", []string{"sleep", "1000"}, "", false, 0},
		{"logged", []string{"sh", "-c", fmt.Sprintf("i=0; while [ $i -lt %d ]; do echo line $i; i=$((i+1)); done; exec sleep 1000", lines)}, fmt.Sprintf("line %d\n", lines-1), false, 0},
		{"attached", []string{"sleep", "1000"}, "", true, 0},
		{"probed", []string{"sleep", "1000"}, "", false, 100},
		{"probed-once", []string{"sleep", "1000"}, "", false, 1},
	} {
		// attach keeps a client on the monitor's attach socket at path
		// until the benchmark ends.
		attach := func(b *testing.B, path string) {
			if !sc.attached {
				return
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- monitorclient.Attach(ctx, path, nil, io.Discard, io.Discard, nil) }()
			b.Cleanup(func() { cancel(); <-done })
			select {
			case err := <-done:
				b.Fatalf("attach %s: %v", path, err)
			case <-time.After(200 * time.Millisecond):
			}
		}
		waitLogged := func(b *testing.B, c *ctr) {
			if sc.done != "" {
				waitFor(b, "the container's output in its log", func() bool {
					log, _ := os.ReadFile(c.cfg.LogPath)
					return strings.HasSuffix(string(log), sc.done)
				})
			}
		}
		b.Run("berth-monitor/"+sc.name, func(b *testing.B) {
			var pids []int
			for range n {
				c := newCtr(b, sc.args, nil)
				pids = append(pids, c.start().MonitorPID)
				c.run()
				waitLogged(b, c)
				attach(b, c.cfg.AttachSocket)
				for i := range sc.probes {
					ec := execCfg(b, c, "probe-"+strconv.Itoa(i), "true")
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					code, err := monitorclient.ExecIn(ctx, c.cfg.ControlSocket, ec)
					cancel()
					if err != nil || code != 0 {
						b.Fatalf("probe: %d, %v", code, err)
					}
				}
			}
			reportMemory(b, pids)
		})
		if sc.name == "idle" {
			b.Run("go-floor/"+sc.name, benchGoFloor)
		}
		b.Run("conmon/"+sc.name, func(b *testing.B) {
			if sc.probes > 0 {
				b.Skip("conmon runs each exec under a conmon of its own: the container's is untouched")
			}
			conmon, err := exec.LookPath("conmon")
			if err != nil {
				b.Skip("conmon not installed")
			}
			var pids []int
			for range n {
				c := newCtr(b, sc.args, nil)
				exitDir, sockDir := filepath.Join(c.dir, "exits"), filepath.Join(c.dir, "socks")
				os.MkdirAll(exitDir, 0o755)
				os.MkdirAll(sockDir, 0o755)
				pidFile := filepath.Join(c.dir, "conmon.pid")
				cmd := exec.Command(conmon, "--cid", c.cfg.ID, "--cuuid", c.cfg.ID, "--name", c.cfg.ID,
					"--runtime", runcPath, "--runtime-arg", "--root="+c.cfg.RuntimeRoot,
					"--bundle", c.cfg.Bundle, "--exit-dir", exitDir, "--log-path", c.cfg.LogPath,
					"--container-pidfile", c.cfg.PidFile, "--socket-dir-path", sockDir,
					"--conmon-pidfile", pidFile, "--syslog=false")
				cmd.Dir = "/"
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("conmon: %v: %s", err, out)
				}
				bs, err := os.ReadFile(pidFile)
				if err != nil {
					b.Fatal(err)
				}
				pid, _ := strconv.Atoi(strings.TrimSpace(string(bs)))
				b.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
				pids = append(pids, pid)
				// conmon's parent returns before the runtime's create is done.
				waitFor(b, "conmon's create", func() bool { _, err := os.Stat(c.cfg.PidFile); return err == nil })
				c.run()
				waitLogged(b, c)
				// conmon's attach socket speaks the same packets.
				attach(b, filepath.Join(sockDir, c.cfg.ID, "attach"))
			}
			reportMemory(b, pids)
		})
	}
}

// benchGoFloor measures a Go program that only waits, built as the
// Makefile builds berth-monitor: what any Go monitor costs before its
// first line of code.
func benchGoFloor(b *testing.B) {
	if monitorBin == "" {
		b.Skip("needs root (TestMain builds the monitor only then)")
	}
	dir := b.TempDir()
	src := filepath.Join(dir, "main.go")
	if err := os.WriteFile(src, []byte("package main\n\nimport \"syscall\"\n\nfunc main() {\n\tfor {\n\t\tsyscall.Pause()\n\t}\n}\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(dir, "floor")
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, src)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOEXPERIMENT=nogreenteagc", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build: %v: %s", err, out)
	}
	var pids []int
	for range 10 {
		p := exec.Command(bin)
		p.Env = []string{"GOMAXPROCS=1"} // as monitorclient.Start runs the monitor
		if err := p.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { p.Process.Kill(); p.Wait() })
		pids = append(pids, p.Process.Pid)
	}
	reportMemory(b, pids)
}

func reportMemory(b *testing.B, pids []int) {
	time.Sleep(time.Second) // let the monitors settle after start
	var sum memory
	for _, pid := range pids {
		m := readMemory(b, pid)
		sum.rss += m.rss
		sum.pss += m.pss
		sum.anon += m.anon
		sum.privateDirty += m.privateDirty
		sum.threads += m.threads
	}
	logMappings(b, b.Name(), pids[0])
	for b.Loop() {
	}
	k := float64(len(pids))
	b.ReportMetric(float64(sum.rss)/k, "RSS-KiB/monitor")
	b.ReportMetric(float64(sum.pss)/k, "PSS-KiB/monitor")
	b.ReportMetric(float64(sum.anon)/k, "anon-KiB/monitor")
	b.ReportMetric(float64(sum.privateDirty)/k, "privdirty-KiB/monitor")
	b.ReportMetric(float64(sum.threads)/k, "threads/monitor")
}
