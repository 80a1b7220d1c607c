package e2e

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// criuBinary is the CRIU the checkpoint tests give berthd: $BERTH_TEST_CRIU,
// or what `make criu` built into build/cache/criu-*/criu of this tree.
// Debian 12's criu 3.17 does not work on recent kernels, so the host's is
// not used; without a built one the tests skip, saying so.
func criuBinary(t testing.TB) string {
	t.Helper()
	p := cachedTool(t, "criu", "criu-*/criu")
	if p == "" {
		t.Skip("CRIU is not built: run `make criu` (or set BERTH_TEST_CRIU to a criu binary)")
	}
	return p
}

// cachedTool is $BERTH_TEST_<NAME> or the newest build/cache/<glob> of
// this tree, "" if neither is there.
func cachedTool(t testing.TB, name, glob string) string {
	t.Helper()
	if p := os.Getenv("BERTH_TEST_" + strings.ToUpper(name)); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("BERTH_TEST_%s: %v", strings.ToUpper(name), err)
		}
		return p
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for ; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		if dir == filepath.Dir(dir) {
			return ""
		}
	}
	found, _ := filepath.Glob(filepath.Join(dir, "build", "cache", glob))
	if len(found) == 0 {
		return ""
	}
	return found[len(found)-1]
}

func startCheckpointEnv(t testing.TB) *ctrEnv {
	t.Helper()
	criu := criuBinary(t)
	return startContainerEnvWith(t, fmt.Sprintf("[runtime]\ncriu_path = %q\n", criu))
}

// bigCounter counts like counter, after filling ~100 MB of its shell's
// memory with a string (its length goes to stderr: bigFilled).
const bigCounter = `x=$(head -c 100000000 /dev/zero | tr '\0' a); echo ${#x} >&2; i=0; while :; do i=$((i+1)); echo $i; sleep 0.1; done`

// bigFilled waits until a bigCounter holds its 100 MB and counts.
func bigFilled(t testing.TB, logPath string) {
	t.Helper()
	waitFor(t, func() bool { return lastCount(t, logPath) >= 2 })
	if got := strings.TrimSpace(logText(readLog(t, logPath), "stderr")); got != "100000000" {
		t.Fatalf("the big counter holds a string of %q bytes, want 100000000", got)
	}
}

// counterScript is counter's command.
const counterScript = `echo kept > /added-by-counter; rm /etc/group; ln -s / /escape; ln -s /etc/shadow /leak; i=0; while :; do i=$((i+1)); echo $i; sleep 0.1; done`

// counter is a container that counts in its shell's memory, one number a
// line, after changing its writable layer: a file added, one deleted.
func (e *ctrEnv) counter(t *testing.T, podID, name string) (id, logPath string) {
	t.Helper()
	id = e.run(t, podID, e.config(name, "sh", "-c", counterScript))
	return id, e.status(t, id).LogPath
}

// lastCount is the counter's last number in its log.
func lastCount(t testing.TB, logPath string) int {
	t.Helper()
	lines := strings.Fields(logText(readLog(t, logPath), "stdout"))
	if len(lines) == 0 {
		return 0
	}
	n, err := strconv.Atoi(lines[len(lines)-1])
	if err != nil {
		t.Fatalf("counter wrote %q", lines[len(lines)-1])
	}
	return n
}

func TestCheckpointContainerLeavesItRunning(t *testing.T) {
	e := startCheckpointEnv(t)
	forEachHandler(t, e.d, func(t *testing.T, handler string) {
		pod := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)
		id, logPath := e.counter(t, pod, "counter")
		waitFor(t, func() bool { return lastCount(t, logPath) >= 3 })
		pidBefore := e.info(t, id).Pid

		dir := t.TempDir()
		loc := filepath.Join(dir, "counter.tar")
		if _, err := e.d.Runtime.CheckpointContainer(e.d.Ctx(t), &runtimeapi.CheckpointContainerRequest{
			ContainerId: id, Location: loc}); err != nil {
			t.Fatalf("CheckpointContainer: %v\nberthd log:\n%s", err, tail(e.d.Log(), 30))
		}
		at := lastCount(t, logPath)

		// It keeps running, the same process, still counting.
		if st := e.status(t, id); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Fatalf("after checkpoint: %v, want running", st.State)
		}
		if pid := e.info(t, id).Pid; pid != pidBefore {
			t.Errorf("after checkpoint: pid %d, was %d", pid, pidBefore)
		}
		waitFor(t, func() bool { return lastCount(t, logPath) >= at+5 })

		// The archive: root's only, alone in its directory (no temporary
		// left), with CRI-O's layout.
		st, err := os.Stat(loc)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("archive mode %v, want 0600", st.Mode().Perm())
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 1 {
			t.Errorf("archive directory holds %d entries, want the archive alone", len(ents))
		}
		files := readTar(t, loc)
		for _, want := range []string{"checkpoint/inventory.img", "checkpoint/pstree.img", "config.dump", "spec.dump",
			"dump.log", "rootfs-diff.tar", "deleted.files", "container.log"} {
			if _, ok := files[want]; !ok {
				t.Errorf("archive has no %s; it has %v", want, names(files))
			}
		}
		if !hasPrefix(files, "checkpoint/pages-") {
			t.Errorf("archive has no memory pages; it has %v", names(files))
		}
		var cfg struct {
			ID, Name, Runtime string
		}
		if err := json.Unmarshal(files["config.dump"], &cfg); err != nil || cfg.ID != id || cfg.Name != "counter" || cfg.Runtime != handler {
			t.Errorf("config.dump %s (%v): want id %s, name counter, runtime %s", files["config.dump"], err, id, handler)
		}
		var spec struct {
			Annotations map[string]string
		}
		if err := json.Unmarshal(files["spec.dump"], &spec); err != nil || spec.Annotations["io.kubernetes.cri.container-name"] != "counter" {
			t.Errorf("spec.dump annotations %v (%v): want the container's name", spec.Annotations, err)
		}
		diff := tarNames(t, files["rootfs-diff.tar"])
		if !diff["added-by-counter"] {
			t.Errorf("rootfs-diff.tar has %v, want added-by-counter", diff)
		}
		// The container's symlinks are kept as links, never followed
		// out of its root filesystem.
		raw := readTarFrom(t, strings.NewReader(string(files["rootfs-diff.tar"])))
		for n := range raw {
			if strings.HasPrefix(n, "escape/") && n != "escape/" {
				t.Errorf("rootfs-diff.tar followed the container's symlink to /: %s", n)
			}
		}
		if _, regular := raw["leak"]; regular {
			t.Errorf("rootfs-diff.tar holds the target of the container's symlink to /etc/shadow")
		}
		if _, ok := raw["escape/"]; !ok || raw["leak/"] != nil {
			t.Errorf("rootfs-diff.tar lacks the container's symlinks: %v", names(raw))
		}
		if diff["etc/passwd"] || diff["bin/busybox"] {
			t.Errorf("rootfs-diff.tar has unchanged image files: %v", diff)
		}
		var deleted []string
		if err := json.Unmarshal(files["deleted.files"], &deleted); err != nil || len(deleted) != 1 || deleted[0] != "/etc/group" {
			t.Errorf("deleted.files %s (%v), want [/etc/group]", files["deleted.files"], err)
		}
		if !strings.Contains(string(files["container.log"]), " stdout F 3\n") {
			t.Errorf("container.log lacks the count so far:\n%s", files["container.log"])
		}

		// checkpointctl (the CRIU project's reader of these archives)
		// shows it, when built (make checkpointctl).
		if ctl := cachedTool(t, "checkpointctl", "checkpointctl-*/checkpointctl"); ctl != "" {
			out, err := exec.Command(ctl, "show", loc).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "counter") || !strings.Contains(string(out), e.image) {
				t.Errorf("checkpointctl show: %v\n%s", err, out)
			}
			t.Logf("checkpointctl show:\n%s", out)
		}

		// crictl's checkpoint (make critest builds crictl) writes one too.
		if crictl := cachedTool(t, "crictl", "cri-tools-*/crictl"); crictl != "" {
			viaCrictl := filepath.Join(t.TempDir(), "crictl.tar")
			out, err := exec.Command(crictl, "--runtime-endpoint", "unix://"+e.d.Socket,
				"checkpoint", "--export="+viaCrictl, id).CombinedOutput()
			if err != nil {
				t.Errorf("crictl checkpoint: %v\n%s", err, out)
			} else if _, ok := readTar(t, viaCrictl)["checkpoint/inventory.img"]; !ok {
				t.Errorf("crictl checkpoint wrote no CRIU images")
			}
		}

		// berthctl's checkpoint, with a path relative to its directory.
		ctlDir := t.TempDir()
		ctl := exec.Command(filepath.Join(e.d.BinDir, "berthctl"), "--endpoint", e.d.Socket, "checkpoint", "-o", "viactl.tar", id)
		ctl.Dir = ctlDir
		if out, err := ctl.CombinedOutput(); err != nil {
			t.Errorf("berthctl checkpoint: %v\n%s", err, out)
		} else if _, ok := readTar(t, filepath.Join(ctlDir, "viactl.tar"))["config.dump"]; !ok {
			t.Errorf("berthctl checkpoint wrote no config.dump")
		}

		// A second checkpoint replaces the first archive.
		if _, err := e.d.Runtime.CheckpointContainer(e.d.Ctx(t), &runtimeapi.CheckpointContainerRequest{
			ContainerId: id, Location: loc}); err != nil {
			t.Fatalf("second CheckpointContainer: %v", err)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 1 {
			t.Errorf("after a second checkpoint the directory holds %d entries", len(ents))
		}
	})
}

func TestCheckpointContainerCRIURefuses(t *testing.T) {
	e := startCheckpointEnv(t)
	forEachHandler(t, e.d, func(t *testing.T, handler string) {
		pod := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)
		// An open file that was deleted and is larger than CRIU's
		// limit for such ("ghost") files, 1 MiB by default: CRIU
		// cannot dump it.
		id := e.run(t, pod, e.config("ghost", "sh", "-c",
			`dd if=/dev/zero of=/big bs=1M count=4 2>/dev/null; exec 3</big; rm /big; echo ready; while :; do sleep 0.1; done`))
		e.waitLog(t, id, "ready")
		dir := t.TempDir()
		_, err := e.d.Runtime.CheckpointContainer(e.d.Ctx(t), &runtimeapi.CheckpointContainerRequest{
			ContainerId: id, Location: filepath.Join(dir, "ghost.tar")})
		if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "CRIU cannot dump it") ||
			!strings.Contains(strings.ToLower(err.Error()), "ghost") {
			t.Fatalf("CheckpointContainer: %v, want FailedPrecondition with CRIU's reason (a ghost file)", err)
		}
		t.Logf("CRIU's refusal, as the caller sees it: %v", err)
		if st := e.status(t, id); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Errorf("after a refused checkpoint: %v, want running", st.State)
		}
		// Not frozen either: it still runs commands.
		if r := e.exec(t, id, 10, "echo", "alive"); strings.TrimSpace(string(r.Stdout)) != "alive" {
			t.Errorf("exec after a refused checkpoint: %q", r.Stdout)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("a refused checkpoint left %d files in the archive's directory", len(ents))
		}
	})
}

// SIGKILL of berthd while CRIU dumps: the container goes on running (CRIU,
// not berthd, froze it, and thaws it), no archive appears, and the
// restarted berthd removes the half-made checkpoint.
func TestCheckpointContainerDaemonKilled(t *testing.T) {
	e := startCheckpointEnv(t)
	handler := handlerNames(t)[0]
	pod := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)
	id := e.run(t, pod, e.config("big", "sh", "-c", bigCounter))
	logPath := e.status(t, id).LogPath
	bigFilled(t, logPath)
	dir := t.TempDir()
	stages := filepath.Join(e.d.Root, "checkpoints")
	done := make(chan error, 1)
	go func() {
		_, err := e.d.Runtime.CheckpointContainer(e.d.Ctx(t), &runtimeapi.CheckpointContainerRequest{
			ContainerId: id, Location: filepath.Join(dir, "big.tar")})
		done <- err
	}()
	waitFor(t, func() bool {
		m, _ := filepath.Glob(filepath.Join(stages, "*", "checkpoint", "*"))
		return len(m) > 0
	})
	e.d.Kill(t)
	if err := <-done; err == nil {
		t.Fatal("CheckpointContainer succeeded although berthd was killed during the dump")
	}
	e.d.Restart(t)
	if st := e.status(t, id); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("after berthd's restart: %v, want running", st.State)
	}
	at := lastCount(t, logPath)
	waitFor(t, func() bool { return lastCount(t, logPath) >= at+5 })
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("the killed checkpoint left %d files in the archive's directory", len(ents))
	}
	if ents, _ := os.ReadDir(stages); len(ents) != 0 {
		t.Errorf("the restarted berthd left %d checkpoint stages", len(ents))
	}
}

// BenchmarkCheckpointContainer100MB: a checkpoint of a running container
// whose shell holds ~100 MB, archive written to a temporary directory (on
// the test's disk), the container left running.
func BenchmarkCheckpointContainer100MB(b *testing.B) {
	e := startCheckpointEnv(b)
	handler := handlerNames(b)[0]
	pod := e.pod(b, handler, runtimeapi.NamespaceMode_CONTAINER)
	id := e.run(b, pod, e.config("big", "sh", "-c", bigCounter))
	logPath := e.status(b, id).LogPath
	bigFilled(b, logPath)
	loc := filepath.Join(b.TempDir(), "big.tar")
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.d.Runtime.CheckpointContainer(e.d.Ctx(b), &runtimeapi.CheckpointContainerRequest{
			ContainerId: id, Location: loc}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if st, err := os.Stat(loc); err == nil {
		b.ReportMetric(float64(st.Size())/1e6, "archive-MB")
	}
}

func TestCheckpointContainerBadRequests(t *testing.T) {
	e := startCheckpointEnv(t)
	handler := handlerNames(t)[0]
	pod := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)
	running := e.run(t, pod, e.config("sleeper", "sleep", "1000"))
	created := e.create(t, pod, e.config("created", "sleep", "1000"))
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "adir"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		what, id, loc string
		code          codes.Code
	}{
		{"empty location", running, "", codes.InvalidArgument},
		{"relative location", running, "ck.tar", codes.InvalidArgument},
		{"missing directory", running, filepath.Join(dir, "none", "ck.tar"), codes.InvalidArgument},
		{"a directory", running, filepath.Join(dir, "adir"), codes.InvalidArgument},
		{"not started", created, filepath.Join(dir, "ck.tar"), codes.FailedPrecondition},
		{"unknown container", "no-such-container", filepath.Join(dir, "ck.tar"), codes.NotFound},
	} {
		_, err := e.d.Runtime.CheckpointContainer(e.d.Ctx(t), &runtimeapi.CheckpointContainerRequest{ContainerId: tc.id, Location: tc.loc})
		wantCode(t, tc.what, err, tc.code)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("bad requests left files: %d entries", len(ents))
	}
	if st := e.status(t, running); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("after bad requests: %v, want running", st.State)
	}
}

// readTar reads every regular file of an archive (they are small here but
// for the memory pages, which a counting shell keeps few of).
func readTar(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return readTarFrom(t, f)
}

func readTarFrom(t *testing.T, r io.Reader) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("read archive: %v", err)
		}
		name := strings.TrimPrefix(filepath.Clean(h.Name), "./")
		if h.Typeflag != tar.TypeReg {
			out[name+"/"] = nil
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = b
	}
}

func tarNames(t *testing.T, b []byte) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for n := range readTarFrom(t, strings.NewReader(string(b))) {
		out[strings.TrimSuffix(n, "/")] = true
	}
	return out
}

func names(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	return out
}

func hasPrefix(m map[string][]byte, prefix string) bool {
	for n := range m {
		if strings.HasPrefix(n, prefix) {
			return true
		}
	}
	return false
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
