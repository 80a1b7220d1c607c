package oci

// A pod's checkpoint (CRI CheckpointPod): one consistent cut of several
// containers of a pod. Every selected container is paused (its cgroup
// frozen) before any is dumped, stays paused until all are dumped and
// their layer changes read, and is resumed before the call returns,
// whatever happened. CRIU, asked to dump a container whose freezer is
// already FROZEN, dumps it as it is and leaves the freezer as it found
// it (FROZEN), even with --leave-running; the resume is Berth's.
//
// The output directory holds one archive per container, in
// CheckpointContainer's format, and pod.json (podCheckpointManifest),
// written last: its presence means the checkpoint is whole.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.podman.io/storage/pkg/archive"
	"golang.org/x/sys/unix"

	"github.com/berth-cri/berth/errdefs"
	"github.com/berth-cri/berth/steptrace"
)

// PodManifestFile is a pod checkpoint's manifest in its directory.
const PodManifestFile = "pod.json"

// podManifestVersion is the version of pod.json this Berth writes and
// reads.
const podManifestVersion = 1

// frozenFile, in a pod checkpoint's staging directory, lists the
// containers the checkpoint pauses, written before the first pause: a
// berthd killed while they are paused resumes them at its next start
// (sweepCheckpointStages), since nothing else in Berth pauses a container.
const frozenFile = "frozen.json"

// outputFile, in a pod checkpoint's staging directory, names the
// output directory, from which the next berthd's start removes what a
// killed one wrote of a checkpoint it did not finish.
const outputFile = "output"

// resumeWait bounds each resume after a checkpoint, which runs even when
// the caller's deadline has passed.
const resumeWait = 30 * time.Second

// PodCheckpointOptions say where and with what a pod checkpoint is
// written.
type PodCheckpointOptions struct {
	// Dir is the caller's output directory: absolute, existing, empty.
	Dir string
	// CriuPath is the CRIU binary; empty is criu from PATH.
	CriuPath string
	// Pod is the pod's own config, opaque to oci (server records its
	// PodSandboxConfig), kept in pod.json for RestorePod.
	Pod json.RawMessage
	// RuntimeHandler is the pod's runtime handler.
	RuntimeHandler string
}

// podCheckpointManifest is pod.json.
type podCheckpointManifest struct {
	Version        int                  `json:"version"`
	PodID          string               `json:"podId"`
	RuntimeHandler string               `json:"runtimeHandler"`
	Pod            json.RawMessage      `json:"pod"`
	CheckpointedAt time.Time            `json:"checkpointedAt"`
	Containers     []podCheckpointEntry `json:"containers"`
}

// podCheckpointEntry is one container of a pod checkpoint.
type podCheckpointEntry struct {
	// Name is the container's CRI metadata name.
	Name string `json:"name"`
	// ID is the checkpointed container's id (informational).
	ID string `json:"id"`
	// Archive is the container's archive in the directory: a plain file
	// name Berth chose (container-N.tar), never the container's name.
	Archive string `json:"archive"`
}

// frozenContainer is an entry of frozenFile.
type frozenContainer struct {
	ID      string  `json:"id"`
	Runtime Runtime `json:"runtime"`
	// PID is the container's init, which a dumping CRIU traces.
	PID int `json:"pid"`
}

// CheckpointPod writes a checkpoint of the running containers ctrs of
// pod podID into o.Dir and leaves them running. Every container must be
// the pod's and running; the list must not repeat one.
func (m *Manager) CheckpointPod(ctx context.Context, podID string, ctrs []*Container, o PodCheckpointOptions) (retErr error) {
	if len(ctrs) == 0 {
		return errdefs.Invalidf("checkpoint pod %s: no container named", podID)
	}
	out, err := openOutputDir(o.Dir)
	if err != nil {
		return err
	}
	defer out.Close()
	criu, err := findCriu(o.CriuPath)
	if err != nil {
		return err
	}
	changes, ok := m.opts.Rootfs.(rootfsChanges)
	if !ok {
		return errdefs.Internal(errors.New("checkpoint: the root filesystem store cannot list a container's changes"))
	}
	// Locked in id order (any two pod checkpoints agree on it), so no
	// start, stop, update or exit's delete meets the freeze.
	ctrs = slices.Clone(ctrs)
	sort.Slice(ctrs, func(i, j int) bool { return ctrs[i].ID() < ctrs[j].ID() })
	for i, c := range ctrs {
		if i > 0 && ctrs[i-1].ID() == c.ID() {
			return errdefs.Invalidf("checkpoint pod %s: container %s is named twice", podID, c.ID())
		}
	}
	for _, c := range ctrs {
		c.ops.Lock()
	}
	locked := true
	unlock := func() {
		if locked {
			for _, c := range ctrs {
				c.ops.Unlock()
			}
			locked = false
		}
	}
	defer unlock()
	recs := make([]Record, len(ctrs))
	for i, c := range ctrs {
		recs[i] = c.Record()
		switch {
		case recs[i].PodID != podID || recs[i].Infra:
			return errdefs.Invalidf("checkpoint pod %s: container %s is not one of its containers", podID, recs[i].ID)
		case recs[i].State != StateRunning:
			return errdefs.FailedPreconditionf("checkpoint pod %s: container %s is %s: only running containers can be checkpointed", podID, recs[i].ID, recs[i].State)
		}
	}

	stage, err := m.checkpointStage("pod-" + podID)
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	if err := os.WriteFile(filepath.Join(stage, outputFile), []byte(o.Dir), 0o600); err != nil {
		return err
	}
	written := []string{}
	defer func() {
		if retErr != nil {
			// Partial artifacts go; the directory is the caller's and stays.
			for _, name := range written {
				if err := out.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
					logFor(podID).Warnf("remove partial pod checkpoint %s: %v", name, err)
				}
			}
		}
	}()

	started := time.Now()
	err = m.dumpFrozen(ctx, ctrs, recs, criu, stage, changes)
	// Running again, as the stage is: the archives are written without
	// holding the containers.
	unlock()
	if err != nil {
		return fmt.Errorf("checkpoint pod %s: %w", podID, err)
	}
	steptrace.Add(ctx, "frozen", time.Since(started))

	man := podCheckpointManifest{
		Version:        podManifestVersion,
		PodID:          podID,
		RuntimeHandler: o.RuntimeHandler,
		Pod:            o.Pod,
		CheckpointedAt: time.Now(),
	}
	defer steptrace.Begin(ctx, "write archives")()
	for i, rec := range recs {
		// A deadline passed is an error, and what was written goes.
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("checkpoint pod %s: %w", podID, err)
		}
		name := fmt.Sprintf("container-%d.tar", i)
		written = append(written, name)
		if err := writeArchiveIn(out, filepath.Join(stage, rec.ID), name); err != nil {
			return fmt.Errorf("checkpoint pod %s: container %s: %w", podID, rec.ID, err)
		}
		man.Containers = append(man.Containers, podCheckpointEntry{Name: rec.Name, ID: rec.ID, Archive: name})
	}
	b, err := json.MarshalIndent(&man, "", "  ")
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("checkpoint pod %s: %w", podID, err)
	}
	written = append(written, PodManifestFile)
	if err := writeFileIn(out, PodManifestFile, b); err != nil {
		return fmt.Errorf("checkpoint pod %s: %w", podID, err)
	}
	logFor(podID).Infof("checkpointed %d containers of the pod to %s in %s", len(recs), o.Dir, time.Since(started).Round(time.Millisecond))
	return nil
}

// dumpFrozen pauses every container, then dumps each (metadata, CRIU
// images, layer changes, log) into stage/<id>, then resumes them all,
// on success, error or ctx's end alike (the resume does not heed ctx).
func (m *Manager) dumpFrozen(ctx context.Context, ctrs []*Container, recs []Record, criu, stage string, changes rootfsChanges) (retErr error) {
	frozen := make([]frozenContainer, len(recs))
	for i, rec := range recs {
		frozen[i] = frozenContainer{ID: rec.ID, Runtime: rec.Runtime, PID: rec.PID}
	}
	b, err := json.Marshal(frozen)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(stage, frozenFile), b, 0o600); err != nil {
		return err
	}
	var paused []frozenContainer
	defer func() {
		if retErr != nil {
			// A dump cut short (the deadline killed the runtime) may
			// leave CRIU on its way out, which puts the freezer back to
			// FROZEN as it ends: resume after it.
			waitTracers(paused)
		}
		if err := resumeAll(context.WithoutCancel(ctx), paused); err != nil {
			retErr = errors.Join(retErr, err)
		}
	}()
	endPause := steptrace.Begin(ctx, "pause")
	for _, f := range frozen {
		if err := f.Runtime.Pause(ctx, f.ID); err != nil {
			endPause()
			// A pause cut short may have frozen it: resume it too.
			paused = append(paused, f)
			return fmt.Errorf("pause container %s: %w", f.ID, err)
		}
		paused = append(paused, f)
	}
	endPause()
	for i, c := range ctrs {
		dir := filepath.Join(stage, recs[i].ID)
		if err := os.Mkdir(dir, 0o700); err != nil {
			return err
		}
		if err := m.dumpOne(ctx, c, &recs[i], criu, dir, changes); err != nil {
			return err
		}
	}
	return nil
}

// dumpOne writes one paused container's checkpoint into dir (c.ops held).
func (m *Manager) dumpOne(ctx context.Context, c *Container, rec *Record, criu, dir string, changes rootfsChanges) error {
	defer steptrace.Begin(ctx, "dump "+rec.Name)()
	spec, err := c.Spec()
	if err != nil {
		return err
	}
	if err := writeCheckpointMetadata(dir, rec, spec); err != nil {
		return err
	}
	if err := m.dumpAndDiff(ctx, rec, criu, dir, changes, spec); err != nil {
		return err
	}
	if rec.LogPath != "" {
		if err := copyFile(rec.LogPath, filepath.Join(dir, ContainerLogFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("checkpoint container %s: copy its log: %w", rec.ID, err)
		}
	}
	return nil
}

// resumeAll resumes every container, each within resumeWait, and
// reports those that failed.
func resumeAll(ctx context.Context, ctrs []frozenContainer) error {
	var errs []error
	for _, f := range ctrs {
		rctx, cancel := context.WithTimeout(ctx, resumeWait)
		err := f.Runtime.Resume(rctx, f.ID)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("resume container %s: %w", f.ID, err))
		}
	}
	return errors.Join(errs...)
}

// recoverPodCheckpoint ends a pod checkpoint a killed berthd left in
// stage: its containers are resumed and its partial output removed.
func recoverPodCheckpoint(ctx context.Context, stage string) {
	resumeLeftFrozen(ctx, stage)
	removePartialOutput(stage)
}

// removePartialOutput removes the archives of an unfinished pod
// checkpoint (no pod.json) from the output directory stage names.
func removePartialOutput(stage string) {
	dir, err := os.ReadFile(filepath.Join(stage, outputFile))
	if err != nil {
		return
	}
	root, err := os.OpenRoot(string(dir))
	if err != nil {
		return
	}
	defer root.Close()
	if _, err := root.Lstat(PodManifestFile); err == nil {
		return // whole: the checkpoint was written before berthd died
	}
	f, err := root.Open(".")
	if err != nil {
		return
	}
	names, _ := f.Readdirnames(maxPodContainers + 1)
	f.Close()
	for _, n := range names {
		if st, err := root.Lstat(n); err == nil && st.Mode().IsRegular() && podArchiveName.MatchString(n) {
			logFor(filepath.Base(stage)).Infof("removing %s of an unfinished pod checkpoint from %s", n, dir)
			root.Remove(n)
		}
	}
}

// resumeLeftFrozen resumes the containers a killed berthd's pod
// checkpoint left paused (stage's frozenFile, if any), after the dumps
// it left running end. A container that is not paused (any more) or
// gone is left alone.
func resumeLeftFrozen(ctx context.Context, stage string) {
	b, err := os.ReadFile(filepath.Join(stage, frozenFile))
	if err != nil {
		return
	}
	var frozen []frozenContainer
	if err := json.Unmarshal(b, &frozen); err != nil {
		logFor(filepath.Base(stage)).Warnf("read %s: %v", frozenFile, err)
		return
	}
	// A dump still running would freeze its container again as it ends
	// (CRIU puts the freezer back as it found it): let it end first.
	waitStrayDumps(stage)
	waitTracers(frozen)
	for _, f := range frozen {
		st, err := f.Runtime.State(ctx, f.ID)
		if err != nil || st.Status != "paused" {
			continue
		}
		logFor(f.ID).Infof("resuming the container a pod checkpoint cut short left paused")
		rctx, cancel := context.WithTimeout(ctx, resumeWait)
		if err := f.Runtime.Resume(rctx, f.ID); err != nil {
			logFor(f.ID).Warnf("resume after a pod checkpoint cut short: %v", err)
		}
		cancel()
	}
}

// openOutputDir opens a pod checkpoint's output directory: an absolute
// path to an existing directory (not a symlink to one) that is empty.
// Everything is written through the returned root, never outside it.
func openOutputDir(dir string) (*os.Root, error) {
	if dir == "" {
		return nil, errdefs.Invalidf("output_path is empty: name an existing, empty directory")
	}
	if !filepath.IsAbs(dir) {
		return nil, errdefs.Invalidf("output_path %q is not an absolute path", dir)
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return nil, errdefs.Invalidf("output_path %q: %v", dir, err)
	}
	if !st.IsDir() {
		return nil, errdefs.Invalidf("output_path %q is not a directory", dir)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, errdefs.Invalidf("output_path %q: %v", dir, err)
	}
	f, err := root.Open(".")
	if err == nil {
		var names []string
		names, err = f.Readdirnames(1)
		f.Close()
		if err == nil && len(names) > 0 {
			root.Close()
			return nil, errdefs.Invalidf("output_path %q is not empty (it holds %q): a pod checkpoint needs an empty directory", dir, names[0])
		}
	}
	if err != nil && !errors.Is(err, io.EOF) {
		root.Close()
		return nil, fmt.Errorf("output_path %q: %w", dir, err)
	}
	return root, nil
}

// writeFileIn writes b to new file name in root, synced.
func writeFileIn(root *os.Root, name string, b []byte) error {
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeArchiveIn tars dir (uncompressed, as writeArchive) into new file
// name in root, synced. Readable by root only: it holds every page of
// the container's memory.
func writeArchiveIn(root *os.Root, dir, name string) error {
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	rd, err := archive.TarWithOptions(dir, &archive.TarOptions{Compression: archive.Uncompressed})
	if err != nil {
		f.Close()
		return fmt.Errorf("write archive %s: %w", name, err)
	}
	defer rd.Close()
	if _, err := io.Copy(f, rd); err != nil {
		f.Close()
		return fmt.Errorf("write archive %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write archive %s: %w", name, err)
	}
	return f.Close()
}

// waitStrayDumps waits, up to resumeWait each, for the runtime
// checkpoints a killed berthd left writing into stage (their command
// lines name it), and SIGKILLs those that outlast that. Each is held by
// a pidfd opened before its command line is read, so a pid reused
// meanwhile is never waited for or signalled.
func waitStrayDumps(stage string) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && bytes.Contains(cmdline, []byte(stage+"/")) {
			logFor(filepath.Base(stage)).Infof("waiting for process %d, a checkpoint a killed berthd left running", pid)
			n, _ := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(resumeWait/time.Millisecond))
			if n == 0 {
				_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
				_, _ = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(strayMonitorWait/time.Millisecond))
			}
		}
		unix.Close(fd)
	}
}

// waitTracers waits, up to resumeWait each, until no process traces the
// containers' inits: a CRIU dumping one traces its processes until it
// ends, and its last act is to put the freezer back as it found it. The
// tracer is held by a pidfd and confirmed as the tracer after it is
// opened, so a reused pid is never waited for.
func waitTracers(ctrs []frozenContainer) {
	for _, f := range ctrs {
		tracer := tracerOf(f.PID)
		if tracer == 0 {
			continue
		}
		fd, err := unix.PidfdOpen(tracer, 0)
		if err != nil {
			continue
		}
		if tracerOf(f.PID) == tracer {
			logFor(f.ID).Infof("waiting for process %d (a CRIU cut short) to stop tracing the container", tracer)
			_, _ = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(resumeWait/time.Millisecond))
		}
		unix.Close(fd)
	}
}

// tracerOf is the pid tracing pid (its status's TracerPid), 0 if none or
// unknown.
func tracerOf(pid int) int {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "TracerPid:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}
