package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// checkpointCounter runs a counter in a new pod, checkpoints it (it keeps
// running) and returns the archive and the highest count in it.
func (e *ctrEnv) checkpointCounter(t *testing.T, handler string) (archive string, saved int) {
	t.Helper()
	pod := e.pod(t, handler, runtimeapi.NamespaceMode_CONTAINER)
	id, logPath := e.counter(t, pod, "counter")
	waitFor(t, func() bool { return lastCount(t, logPath) >= 3 })
	archive = filepath.Join(t.TempDir(), "counter.tar")
	if _, err := e.d.Runtime.CheckpointContainer(e.d.Ctx(t), &runtimeapi.CheckpointContainerRequest{
		ContainerId: id, Location: archive}); err != nil {
		t.Fatalf("CheckpointContainer: %v\nberthd log:\n%s", err, tail(e.d.Log(), 30))
	}
	return archive, countsIn(t, readTar(t, archive)["container.log"])
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
		archive, saved := e.checkpointCounter(t, handler)
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
		if st.Image.GetImage() != e.image || !strings.HasPrefix(st.ImageRef, "") {
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
