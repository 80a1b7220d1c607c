package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// checkpointCounter runs a counter in a new pod, checkpoints it (it keeps
// running) and returns the archive and the highest count in it.
func (e *ctrEnv) checkpointCounter(t *testing.T, handler string) (archive string, saved int) {
	t.Helper()
	archive, saved, _ = e.checkpointCounterID(t, handler)
	return archive, saved
}

// checkpointCounterID is checkpointCounter that also returns the
// checkpointed container.
func (e *ctrEnv) checkpointCounterID(t *testing.T, handler string) (archive string, saved int, id string) {
	t.Helper()
	pod := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)
	id, logPath := e.counter(t, pod, "counter")
	waitFor(t, func() bool { return lastCount(t, logPath) >= 3 })
	archive = filepath.Join(t.TempDir(), "counter.tar")
	if _, err := e.d.Runtime.CheckpointContainer(e.d.Ctx(t), &runtimeapi.CheckpointContainerRequest{
		ContainerId: id, Location: archive}); err != nil {
		t.Fatalf("CheckpointContainer: %v\nberthd log:\n%s", err, tail(e.d.Log(), 30))
	}
	return archive, countsIn(t, readTar(t, archive)["container.log"]), id
}

// countsIn is the numbers a counter's CRI log holds, in order.
func countsIn(t testing.TB, log []byte) int {
	t.Helper()
	p := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(p, log, 0o600); err != nil {
		t.Fatal(err)
	}
	return lastCount(t, p)
}

// restoreConfig is the counter's config with the archive as its image, as
// kubelet (or a person with crictl) asks for a restore.
func (e *ctrEnv) restoreConfig(archive string) *runtimeapi.ContainerConfig {
	cfg := e.config("counter", "sh", "-c", counterScript)
	cfg.Image = &runtimeapi.ImageSpec{Image: archive}
	return cfg
}

func TestRestoreContainer(t *testing.T) {
	e := startCheckpointEnv(t)
	forEachHandler(t, e.d, func(t *testing.T, handler string) {
		archive, saved, orig := e.checkpointCounterID(t, handler)
		pod := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)

		created := time.Now()
		id := e.create(t, pod, e.restoreConfig(archive))
		createTime := time.Since(created)
		st := e.status(t, id)
		if st.State != runtimeapi.ContainerState_CONTAINER_CREATED {
			t.Fatalf("after CreateContainer: %v, want created", st.State)
		}
		if pid := e.info(t, id).Pid; pid != 0 {
			t.Errorf("a restore not yet started has pid %d, want none", pid)
		}
		if st.Image.GetImage() != e.image {
			t.Errorf("restored container's image %q, want the checkpoint's %q", st.Image.GetImage(), e.image)
		}
		started := time.Now()
		e.start(t, id)
		t.Logf("%s: restore: CreateContainer %v, StartContainer %v", handler, createTime.Round(time.Millisecond), time.Since(started).Round(time.Millisecond))
		if st := e.status(t, id); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Fatalf("after StartContainer: %v, want running", st.State)
		}

		// The log reads on: the archive's log, then the count where the
		// memory image left it, not from 1.
		logPath := e.status(t, id).LogPath
		waitFor(t, func() bool { return lastCount(t, logPath) >= saved+5 })
		counts := strings.Fields(logText(readLog(t, logPath), "stdout"))
		for i, c := range counts {
			if n, _ := strconv.Atoi(c); i > 0 && n == 1 {
				t.Fatalf("the restored container counted from 1 again: %v", counts)
			}
		}

		// In the new pod's network namespace, not the old one's.
		if a, b := netnsOf(t, e.info(t, orig).Pid), netnsOf(t, e.info(t, id).Pid); a == b {
			t.Errorf("the restored container is in the checkpointed one's network namespace %s", a)
		}

		// The writable layer's changes are back, the symlinks as links.
		if out := e.exec(t, id, 10, "cat", "/added-by-counter"); strings.TrimSpace(string(out.Stdout)) != "kept" {
			t.Errorf("/added-by-counter in the restored container: %q %q", out.Stdout, out.Stderr)
		}
		if out := e.exec(t, id, 10, "ls", "/etc/group"); out.ExitCode == 0 {
			t.Errorf("/etc/group, deleted before the checkpoint, is back")
		}
		if out := e.exec(t, id, 10, "readlink", "/escape"); strings.TrimSpace(string(out.Stdout)) != "/" {
			t.Errorf("/escape in the restored container: %q", out.Stdout)
		}

		// The monitor owns it: stop and remove as any container.
		e.stop(t, id, 5)
		if st := e.status(t, id); st.State != runtimeapi.ContainerState_CONTAINER_EXITED {
			t.Fatalf("after StopContainer: %v", st.State)
		}
		if _, err := e.d.Runtime.RemoveContainer(e.d.Ctx(t), &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
			t.Fatalf("RemoveContainer: %v", err)
		}
		e.requireNoTrace(t, id)
	})
}

func netnsOf(t testing.TB, pid int) string {
	t.Helper()
	l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// removeLeavingNothing removes container id and requires that nothing of
// it is left (requireNoTrace).
func (e *ctrEnv) removeLeavingNothing(t testing.TB, id string) {
	t.Helper()
	if _, err := e.d.Runtime.RemoveContainer(e.d.Ctx(t), &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("RemoveContainer: %v", err)
	}
	e.requireNoTrace(t, id)
}

// requireNoTrace fails unless nothing of container id is left: no
// record, no bundle, no root filesystem, no monitor, no checkpoint stage.
func (e *ctrEnv) requireNoTrace(t testing.TB, id string) {
	t.Helper()
	if _, err := e.d.Runtime.ContainerStatus(context.Background(), &runtimeapi.ContainerStatusRequest{ContainerId: id}); err == nil {
		t.Errorf("container %s is still listed", id)
	}
	for _, dir := range []string{e.d.Root, e.d.RunRoot} {
		var found []string
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && id != "" && strings.Contains(d.Name(), id) {
				found = append(found, p)
			}
			return nil
		})
		if len(found) > 0 {
			t.Errorf("container %s left %v", id, found)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(e.d.Root, "checkpoints")); len(ents) != 0 {
		t.Errorf("%d checkpoint stages left", len(ents))
	}
}

// tarEntry is one entry of a hand-made archive.
type tarEntry struct {
	hdr  tar.Header
	body []byte
}

// writeArchive writes files (sorted) then extra entries as a tar.
func writeArchive(t *testing.T, path string, files map[string][]byte, extra ...tarEntry) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range slices.Sorted(maps.Keys(files)) {
		h := &tar.Header{Name: n, Mode: 0o600, Size: int64(len(files[n])), Typeflag: tar.TypeReg}
		if strings.HasSuffix(n, "/") {
			h = &tar.Header{Name: n, Mode: 0o700, Typeflag: tar.TypeDir}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(files[n])
	}
	for _, e := range extra {
		h := e.hdr
		h.Size = int64(len(e.body))
		if h.Mode == 0 {
			h.Mode = 0o600
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.body)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// nodeState is what a failed restore must not change: berthd's and the
// store's directories of containers, bundles, exits, layers and
// checkpoint stages, and the containers listed.
func (e *ctrEnv) nodeState(t testing.TB) []string {
	t.Helper()
	var out []string
	for _, pat := range []string{
		filepath.Join(e.d.Root, "*", "*"), filepath.Join(e.d.RunRoot, "*", "*"),
		filepath.Join(e.d.Root, "storage", "overlay", "*"), filepath.Join(e.d.Root, "storage", "overlay-containers", "*"),
	} {
		m, _ := filepath.Glob(pat)
		out = append(out, m...)
	}
	resp, err := e.d.Runtime.ListContainers(e.d.Ctx(t), &runtimeapi.ListContainersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range resp.Containers {
		out = append(out, "container "+c.Id)
	}
	slices.Sort(out)
	return out
}

// processesNaming lists the processes whose command line names id
// (monitors, runtimes, CRIU).
func processesNaming(id string) []string {
	var out []string
	m, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range m {
		b, _ := os.ReadFile(p)
		if bytes.Contains(b, []byte(id)) {
			out = append(out, p+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}

// Hostile and broken archives are refused before anything is made.
func TestRestoreContainerHostileArchives(t *testing.T) {
	e := startCheckpointEnv(t)
	handler := handlerNames(t)[0]
	archive, _ := e.checkpointCounter(t, handler)
	good := readTar(t, archive)
	raw, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	pod := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)
	dir := t.TempDir()
	without := func(name string) map[string][]byte {
		m := maps.Clone(good)
		delete(m, name)
		return m
	}
	with := func(name string, b []byte) map[string][]byte {
		m := maps.Clone(good)
		m[name] = b
		return m
	}
	var cfg map[string]any
	if err := json.Unmarshal(good["config.dump"], &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["rootfsImageRef"] = strings.Repeat("ab", 32)
	cfg["rootfsImageName"] = "127.0.0.1:1/absent/image:1"
	absentImage, _ := json.Marshal(cfg)
	hostFile := filepath.Join(t.TempDir(), "pwned")

	for _, tc := range []struct {
		what   string
		files  map[string][]byte
		extra  []tarEntry
		raw    []byte // instead of files and extra
		code   codes.Code
		reason string
	}{
		{what: "path traversal", files: good, extra: []tarEntry{{tar.Header{Name: "../../escaped", Typeflag: tar.TypeReg}, []byte("x")}},
			code: codes.InvalidArgument, reason: "leaves"},
		{what: "traversal inside a name", files: good, extra: []tarEntry{{tar.Header{Name: "checkpoint/../../x", Typeflag: tar.TypeReg}, []byte("x")}},
			code: codes.InvalidArgument, reason: "leaves"},
		{what: "absolute path", files: good, extra: []tarEntry{{tar.Header{Name: "/tmp/escaped", Typeflag: tar.TypeReg}, []byte("x")}},
			code: codes.InvalidArgument, reason: "absolute"},
		{what: "symlink escape", files: without("spec.dump"), extra: []tarEntry{
			{tar.Header{Name: "spec.dump", Typeflag: tar.TypeSymlink, Linkname: "/etc/shadow"}, nil}},
			code: codes.InvalidArgument, reason: "symlink"},
		{what: "symlinked directory", files: good, extra: []tarEntry{
			{tar.Header{Name: "out", Typeflag: tar.TypeSymlink, Linkname: filepath.Dir(hostFile)}, nil},
			{tar.Header{Name: "out/pwned", Typeflag: tar.TypeReg}, []byte("x")}},
			code: codes.InvalidArgument, reason: "symlink"},
		{what: "hard link", files: good, extra: []tarEntry{{tar.Header{Name: "hl", Typeflag: tar.TypeLink, Linkname: "/etc/shadow"}, nil}},
			code: codes.InvalidArgument, reason: "hard link"},
		{what: "device", files: good, extra: []tarEntry{{tar.Header{Name: "mem", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 1}, nil}},
			code: codes.InvalidArgument, reason: "device"},
		{what: "entry twice", files: good, extra: []tarEntry{{tar.Header{Name: "config.dump", Typeflag: tar.TypeReg}, []byte("{}")}},
			code: codes.InvalidArgument, reason: "twice"},
		{what: "truncated tar", raw: raw[:len(raw)/2], code: codes.InvalidArgument, reason: "truncated"},
		{what: "not a tar", raw: []byte("hello, this is no archive\n"), code: codes.InvalidArgument, reason: "archive"},
		{what: "missing config.dump", files: without("config.dump"), code: codes.InvalidArgument, reason: "no config.dump"},
		{what: "corrupt config.dump", files: with("config.dump", []byte("{")), code: codes.InvalidArgument, reason: "config.dump"},
		{what: "no CRIU images", files: without("checkpoint/inventory.img"), code: codes.InvalidArgument, reason: "inventory.img"},
		{what: "relative deleted path", files: with("deleted.files", []byte(`["etc/passwd"]`)), code: codes.InvalidArgument, reason: "deleted.files"},
		{what: "deleted path through the container's symlink", files: with("deleted.files", []byte(`["/escape/etc/hostname"]`)),
			code: codes.InvalidArgument, reason: "escape"},
		{what: "image not in the store", files: with("config.dump", absentImage), code: codes.FailedPrecondition, reason: "127.0.0.1:1/absent/image:1"},
	} {
		t.Run(strings.ReplaceAll(tc.what, " ", "_"), func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.what, " ", "-")+".tar")
			if tc.raw != nil {
				if err := os.WriteFile(path, tc.raw, 0o600); err != nil {
					t.Fatal(err)
				}
			} else {
				writeArchive(t, path, tc.files, tc.extra...)
			}
			before := e.nodeState(t)
			_, err := e.tryCreate(t, pod, e.restoreConfig(path))
			if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("CreateContainer: %v, want %v naming %q", err, tc.code, tc.reason)
			}
			t.Logf("refused: %v", err)
			if after := e.nodeState(t); !slices.Equal(before, after) {
				t.Errorf("a refused restore changed the node:\nbefore %v\nafter  %v", before, after)
			}
			if _, err := os.Lstat(hostFile); err == nil {
				t.Errorf("the archive wrote %s on the host", hostFile)
			}
		})
	}
	for _, p := range []string{"", "relative/archive.tar", dir, filepath.Join(dir, "absent.tar")} {
		cfg := e.restoreConfig(p)
		if p == "" || !filepath.IsAbs(p) {
			// Not a path: an image name, which the store does not know.
			cfg.Image.Image = "/" + p
		}
		_, err := e.tryCreate(t, pod, cfg)
		wantCode(t, "archive "+cfg.Image.Image, err, codes.InvalidArgument)
	}
}

// A container's symlink in the layer changes, followed by an entry
// through it, stays inside the container's root filesystem.
func TestRestoreContainerDiffStaysInRootfs(t *testing.T) {
	e := startCheckpointEnv(t)
	handler := handlerNames(t)[0]
	archive, _ := e.checkpointCounter(t, handler)
	files := readTar(t, archive)
	hostDir := t.TempDir()
	var diff bytes.Buffer
	tw := tar.NewWriter(&diff)
	for _, h := range []*tar.Header{
		{Name: "added-by-counter", Typeflag: tar.TypeReg, Mode: 0o644, Size: 5},
		{Name: "out", Typeflag: tar.TypeSymlink, Linkname: hostDir, Mode: 0o777},
		{Name: "out/pwned", Typeflag: tar.TypeReg, Mode: 0o644, Size: 5},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte("kept\n"))
		}
	}
	tw.Close()
	files["rootfs-diff.tar"] = diff.Bytes()
	path := filepath.Join(t.TempDir(), "diff.tar")
	writeArchive(t, path, files)
	pod := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)
	id, err := e.tryCreate(t, pod, e.restoreConfig(path))
	if ents, _ := os.ReadDir(hostDir); len(ents) != 0 {
		t.Fatalf("the archive's layer changes wrote %d files on the host through a symlink", len(ents))
	}
	if err != nil {
		t.Logf("refused: %v", err)
		return
	}
	e.start(t, id)
	if out := e.exec(t, id, 10, "cat", filepath.Join(hostDir, "pwned")); strings.TrimSpace(string(out.Stdout)) != "kept" {
		t.Errorf("the entry through the symlink is not in the container: %q %q", out.Stdout, out.Stderr)
	}
}

// A restore that CRIU fails (its images damaged) leaves no monitor and no
// runtime state; the container stays CREATED and RemoveContainer leaves
// nothing.
func TestRestoreContainerFailureLeavesNothing(t *testing.T) {
	e := startCheckpointEnv(t)
	handler := handlerNames(t)[0]
	archive, _ := e.checkpointCounter(t, handler)
	files := readTar(t, archive)
	files["checkpoint/pstree.img"] = bytes.Repeat([]byte{0xff}, 64)
	path := filepath.Join(t.TempDir(), "damaged.tar")
	writeArchive(t, path, files)
	pod := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)
	before := e.nodeState(t)
	id := e.create(t, pod, e.restoreConfig(path))
	_, err := e.d.Runtime.StartContainer(e.d.Ctx(t), &runtimeapi.StartContainerRequest{ContainerId: id})
	if err == nil {
		t.Fatal("StartContainer restored from damaged CRIU images")
	}
	t.Logf("StartContainer: %v", err)
	if st := e.status(t, id); st.State != runtimeapi.ContainerState_CONTAINER_CREATED {
		t.Errorf("after a failed restore: %v, want created", st.State)
	}
	if p := processesNaming(id); len(p) != 0 {
		t.Errorf("a failed restore left processes: %v", p)
	}
	if _, err := e.d.Runtime.RemoveContainer(e.d.Ctx(t), &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("RemoveContainer: %v", err)
	}
	if after := e.nodeState(t); !slices.Equal(before, after) {
		t.Errorf("a failed restore, removed, changed the node:\nbefore %v\nafter  %v", before, after)
	}
	e.requireNoTrace(t, id)
}

// A restore not yet started stops and is removed without a monitor or a
// runtime ever running.
func TestRestoreContainerStopBeforeStart(t *testing.T) {
	e := startCheckpointEnv(t)
	handler := handlerNames(t)[0]
	archive, _ := e.checkpointCounter(t, handler)
	pod := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)
	id := e.create(t, pod, e.restoreConfig(archive))
	e.stop(t, id, 5)
	st := e.status(t, id)
	if st.State != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Fatalf("stopped before start: %v", st.State)
	}
	_, err := e.d.Runtime.StartContainer(e.d.Ctx(t), &runtimeapi.StartContainerRequest{ContainerId: id})
	wantCode(t, "start after stop", err, codes.FailedPrecondition)
	e.removeLeavingNothing(t, id)
}

// A restore CreateContainer prepared survives berthd's SIGKILL, CREATED,
// and is restored after it; the restored container is then adopted by the
// next restart as any running one.
func TestRestoreContainerDaemonRestart(t *testing.T) {
	e := startCheckpointEnv(t)
	handler := handlerNames(t)[0]
	archive, saved := e.checkpointCounter(t, handler)
	pod := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)
	id := e.create(t, pod, e.restoreConfig(archive))
	e.d.Kill(t)
	e.d.Restart(t)
	if st := e.status(t, id); st.State != runtimeapi.ContainerState_CONTAINER_CREATED {
		t.Fatalf("a prepared restore after berthd's restart: %v, want created", st.State)
	}
	e.start(t, id)
	logPath := e.status(t, id).LogPath
	waitFor(t, func() bool { return lastCount(t, logPath) >= saved+3 })
	e.d.Kill(t)
	e.d.Restart(t)
	if st := e.status(t, id); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("a restored container after berthd's restart: %v, want running", st.State)
	}
	at := lastCount(t, logPath)
	waitFor(t, func() bool { return lastCount(t, logPath) >= at+3 })
	e.stop(t, id, 5)
	if st := e.status(t, id); st.State != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Fatalf("after StopContainer: %v", st.State)
	}
}

// BenchmarkRestoreContainer100MB: CreateContainer+StartContainer of a
// container restored from the checkpoint of one whose shell holds ~100
// MB, into a new pod; the restored container is removed after each.
func BenchmarkRestoreContainer100MB(b *testing.B) {
	benchRestore(b, bigCounter, bigFilled)
}

// BenchmarkRestoreContainerSmall: the same for the small counter.
func BenchmarkRestoreContainerSmall(b *testing.B) {
	benchRestore(b, counterScript, func(t testing.TB, logPath string) {
		waitFor(t, func() bool { return lastCount(t, logPath) >= 2 })
	})
}

func benchRestore(b *testing.B, script string, ready func(testing.TB, string)) {
	e := startCheckpointEnv(b)
	handler := handlerNames(b)[0]
	pod := e.pod(b, handler, runtimeapi.NamespaceMode_CONTAINER)
	id := e.run(b, pod, e.config("counter", "sh", "-c", script))
	ready(b, e.status(b, id).LogPath)
	archive := filepath.Join(b.TempDir(), "counter.tar")
	if _, err := e.d.Runtime.CheckpointContainer(e.d.Ctx(b), &runtimeapi.CheckpointContainerRequest{
		ContainerId: id, Location: archive}); err != nil {
		b.Fatal(err)
	}
	e.stop(b, id, 0)
	into := e.pod(b, handler, runtimeapi.NamespaceMode_CONTAINER)
	cfg := e.config("counter", "sh", "-c", script)
	cfg.Image = &runtimeapi.ImageSpec{Image: archive}
	ctx := e.d.Ctx(b)
	b.ResetTimer()
	for b.Loop() {
		resp, err := e.d.Runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: into, Config: cfg, SandboxConfig: e.podConfigs[into]})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.d.Runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: resp.ContainerId}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if _, err := e.d.Runtime.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: resp.ContainerId}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	if st, err := os.Stat(archive); err == nil {
		b.ReportMetric(float64(st.Size())/1e6, "archive-MB")
	}
}

// Into a pod-shared PID namespace: CRIU must give the processes their
// old pids there. In a new pod they are usually free and the restore works,
// but not always: the runtime's own short-lived processes take pids of the
// namespace too (about 1 run in 2 here, under load), and then CRIU refuses
// as below. Where another container holds them (the first restore), CRIU
// refuses, the error says so, and the container stays CREATED with nothing
// running.
func TestRestoreContainerSharedPIDNamespace(t *testing.T) {
	e := startCheckpointEnv(t)
	handler := handlerNames(t)[0]
	pod := e.pod(t, handler, runtimeapi.NamespaceMode_POD)
	orig, logPath := e.counter(t, pod, "counter")
	waitFor(t, func() bool { return lastCount(t, logPath) >= 3 })
	archive := filepath.Join(t.TempDir(), "counter.tar")
	if _, err := e.d.Runtime.CheckpointContainer(e.d.Ctx(t), &runtimeapi.CheckpointContainerRequest{ContainerId: orig, Location: archive}); err != nil {
		t.Fatal(err)
	}
	saved := countsIn(t, readTar(t, archive)["container.log"])

	free := e.pod(t, handler, runtimeapi.NamespaceMode_POD)
	id := e.create(t, free, e.restoreConfig(archive))
	if _, err := e.d.Runtime.StartContainer(e.d.Ctx(t), &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		// A pid taken by the runtime's own processes: the same clean
		// refusal as where a container holds it.
		requireCleanRefusal(t, e, id, err)
		t.Skipf("the old pids were not free in the new pod this time: %v", err)
	}
	l := e.status(t, id).LogPath
	waitFor(t, func() bool { return lastCount(t, l) >= saved+5 })
	if a, b := pidnsOf(t, e.info(t, id).Pid), pidnsOf(t, e.info(t, orig).Pid); a == b {
		t.Errorf("the restored container is in the old pod's PID namespace")
	}

	// A second restore into the same pod: the first holds the pids.
	again := e.restoreConfig(archive)
	again.Metadata.Attempt = 1
	id = e.create(t, free, again)
	_, err := e.d.Runtime.StartContainer(e.d.Ctx(t), &runtimeapi.StartContainerRequest{ContainerId: id})
	requireCleanRefusal(t, e, id, err)
}

// requireCleanRefusal checks a restore CRIU refused: FailedPrecondition
// with CRIU's reason, the container still CREATED, nothing running.
func requireCleanRefusal(t *testing.T, e *ctrEnv, id string, err error) {
	t.Helper()
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "CRIU cannot restore it") {
		t.Fatalf("restore where a pid is taken: %v, want FailedPrecondition with CRIU's reason", err)
	}
	t.Logf("refused: %v", err)
	if st := e.status(t, id); st.State != runtimeapi.ContainerState_CONTAINER_CREATED {
		t.Errorf("after a refused restore: %v, want created", st.State)
	}
	if p := processesNaming(id); len(p) != 0 {
		t.Errorf("a refused restore left processes: %v", p)
	}
}

func pidnsOf(t testing.TB, pid int) string {
	t.Helper()
	l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// crictl (make critest builds it) restores as a person would: create with
// the archive as the image, then start.
func TestRestoreContainerCrictl(t *testing.T) {
	crictl := cachedTool(t, "crictl", "cri-tools-*/crictl")
	if crictl == "" {
		t.Skip("crictl is not built: run `make critest`")
	}
	e := startCheckpointEnv(t)
	handler := handlerNames(t)[0]
	archive, saved := e.checkpointCounter(t, handler)
	pod := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)
	dir := t.TempDir()
	ctrJSON, _ := json.Marshal(e.restoreConfig(archive))
	podJSON, _ := json.Marshal(e.podConfigs[pod])
	for name, b := range map[string][]byte{"ctr.json": ctrJSON, "pod.json": podJSON} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	crictlRun := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(crictl, append([]string{"--runtime-endpoint", "unix://" + e.d.Socket}, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("crictl %v: %v\n%s%s", args, err, out, stderr.Bytes())
		}
		return strings.TrimSpace(string(out))
	}
	id := crictlRun("create", pod, filepath.Join(dir, "ctr.json"), filepath.Join(dir, "pod.json"))
	t.Cleanup(func() {
		e.d.Runtime.RemoveContainer(context.Background(), &runtimeapi.RemoveContainerRequest{ContainerId: id})
	})
	crictlRun("start", id)
	l := e.status(t, id).LogPath
	waitFor(t, func() bool { return lastCount(t, l) >= saved+3 })
}

// A container whose shell holds 100 MB comes back with it: the restored
// process's resident memory is the string's, and it counts on.
func TestRestoreContainerBigMemory(t *testing.T) {
	e := startCheckpointEnv(t)
	handler := handlerNames(t)[0]
	archive, saved := e.checkpointBig(t, handler)
	pod := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)
	cfg := e.config("big", "sh", "-c", bigCounter)
	cfg.Image = &runtimeapi.ImageSpec{Image: archive}
	id := e.create(t, pod, cfg)
	start := time.Now()
	e.start(t, id)
	t.Logf("StartContainer of a 100 MB restore: %v", time.Since(start).Round(time.Millisecond))
	l := e.status(t, id).LogPath
	waitFor(t, func() bool { return lastCount(t, l) >= saved+3 })
	if rss := rssKiB(t, e.info(t, id).Pid); rss < 95_000 {
		t.Errorf("the restored shell's RSS is %d KiB, want its 100 MB string back", rss)
	}
}

// checkpointBig checkpoints a bigCounter and returns the archive and its
// last count.
func (e *ctrEnv) checkpointBig(t *testing.T, handler string) (string, int) {
	t.Helper()
	pod := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)
	id := e.run(t, pod, e.config("big", "sh", "-c", bigCounter))
	bigFilled(t, e.status(t, id).LogPath)
	archive := filepath.Join(t.TempDir(), "big.tar")
	if _, err := e.d.Runtime.CheckpointContainer(e.d.Ctx(t), &runtimeapi.CheckpointContainerRequest{ContainerId: id, Location: archive}); err != nil {
		t.Fatal(err)
	}
	return archive, countsIn(t, readTar(t, archive)["container.log"])
}

// berthd SIGKILLed while StartContainer restores: the restarted berthd
// ends what the restore started (its monitor, the runtime's container)
// and reports the container exited; RemoveContainer leaves nothing.
func TestRestoreContainerDaemonKilledMidRestore(t *testing.T) {
	e := startCheckpointEnv(t)
	handler := handlerNames(t)[0]
	archive, _ := e.checkpointBig(t, handler)
	pod := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)
	cfg := e.config("big", "sh", "-c", bigCounter)
	cfg.Image = &runtimeapi.ImageSpec{Image: archive}
	id := e.create(t, pod, cfg)
	done := make(chan error, 1)
	go func() {
		_, err := e.d.Runtime.StartContainer(e.d.Ctx(t), &runtimeapi.StartContainerRequest{ContainerId: id})
		done <- err
	}()
	deadline := time.Now().Add(time.Minute)
	for len(monitorProcs()[id]) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no monitor for the restore")
		}
		time.Sleep(time.Millisecond)
	}
	e.d.Kill(t)
	<-done
	e.d.Restart(t)
	st := e.status(t, id)
	if st.State != runtimeapi.ContainerState_CONTAINER_EXITED || !strings.Contains(st.Message, "restore") {
		t.Fatalf("after berthd was killed mid-restore: %v %q, want exited saying why", st.State, st.Message)
	}
	if p := processesNaming(id); len(p) != 0 {
		t.Errorf("left running: %v", p)
	}
	e.removeLeavingNothing(t, id)
}

// The same with CRIU caught mid-restore: the monitor's process group
// (monitor, runtime, CRIU) is stopped as soon as CRIU runs, then berthd
// is killed; the restarted berthd kills the group and must clean what a
// CRIU killed midway leaves (mounts in its work directory and in the
// runtime's state directory, processes half restored).
func TestRestoreContainerDaemonKilledDuringCRIU(t *testing.T) {
	e := startCheckpointEnv(t)
	handler := handlerNames(t)[0]
	archive, _ := e.checkpointBig(t, handler)
	pod := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)
	cfg := e.config("big", "sh", "-c", bigCounter)
	cfg.Image = &runtimeapi.ImageSpec{Image: archive}
	id := e.create(t, pod, cfg)
	before := e.nodeState(t)
	done := make(chan error, 1)
	go func() {
		_, err := e.d.Runtime.StartContainer(e.d.Ctx(t), &runtimeapi.StartContainerRequest{ContainerId: id})
		done <- err
	}()
	deadline := time.Now().Add(time.Minute)
	var mon int
	for mon == 0 || !hasCRIUBelow(mon) {
		if time.Now().After(deadline) {
			t.Fatal("no CRIU under the restore's monitor")
		}
		if pids := monitorProcs()[id]; len(pids) > 0 {
			mon = pids[0]
		}
		time.Sleep(500 * time.Microsecond)
	}
	if err := syscall.Kill(-mon, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	e.d.Kill(t)
	<-done
	e.d.Restart(t)
	st := e.status(t, id)
	if st.State != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Fatalf("after berthd was killed during CRIU's restore: %v %q, want exited", st.State, st.Message)
	}
	if p := processesNaming(id); len(p) != 0 {
		t.Errorf("left running: %v", p)
	}
	e.removeLeavingNothing(t, id)
	var left []string
	for _, p := range e.nodeState(t) {
		if !slices.Contains(before, p) {
			left = append(left, p)
		}
	}
	if len(left) > 0 {
		t.Errorf("left on the node: %v", left)
	}
	m, _ := mountinfoUnder(e.d.RunRoot)
	for _, p := range m {
		if strings.Contains(p, id) {
			t.Errorf("left mounted: %s", p)
		}
	}
}

// hasCRIUBelow says whether a criu process descends from pid.
func hasCRIUBelow(pid int) bool {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	parent := map[int]int{}
	var criu []int
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := string(b)
		open, closeIdx := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || closeIdx < open {
			continue
		}
		me, _ := strconv.Atoi(strings.TrimSpace(s[:open]))
		f := strings.Fields(s[closeIdx+1:])
		if len(f) < 2 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		parent[me] = pp
		if s[open+1:closeIdx] == "criu" {
			criu = append(criu, me)
		}
	}
	for _, c := range criu {
		for p := parent[c]; p > 1; p = parent[p] {
			if p == pid {
				return true
			}
		}
	}
	return false
}
