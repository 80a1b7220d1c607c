package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	metadata "github.com/checkpoint-restore/checkpointctl/lib"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"go.podman.io/storage/pkg/archive"

	"github.com/berth-cri/berth/errdefs"
)

// CheckpointOptions say where and with what a checkpoint is written.
type CheckpointOptions struct {
	// Location is the archive to write: an absolute path whose directory
	// exists. An existing regular file there is replaced.
	Location string
	// CriuPath is the CRIU binary; empty is criu from PATH.
	CriuPath string
}

// ContainerLogFile is the container's CRI log in a checkpoint archive.
const ContainerLogFile = "container.log"

// rootfsChanges is what the store offers for a checkpoint (storage.Store
// has it): the writable layer's changes as a tar and the deleted paths.
type rootfsChanges interface {
	WriteContainerChanges(id string, skip []string, w io.Writer) (deleted []string, err error)
}

// Checkpoint writes a checkpoint of running container c to o.Location and
// leaves c running, as kubelet's checkpoint API wants (forensics of a
// running container). The archive has CRI-O's and Podman's layout, which
// checkpointctl reads: CRIU's images in checkpoint/, config.dump,
// spec.dump, dump.log and stats-dump, the writable layer's changes as
// rootfs-diff.tar (and deleted.files), and the CRI log as container.log.
//
// The container's monitor, stdio, exit status and log are not touched:
// CRIU dumps the processes in place (the pipes to the monitor included)
// and lets them go on. The archive is written beside its
// destination under a temporary name and renamed into place: it appears
// whole or not at all.
func (m *Manager) Checkpoint(ctx context.Context, c *Container, o CheckpointOptions) error {
	if err := checkArchiveLocation(o.Location); err != nil {
		return err
	}
	criu, err := findCriu(o.CriuPath)
	if err != nil {
		return err
	}
	changes, ok := m.opts.Rootfs.(rootfsChanges)
	if !ok {
		return errdefs.Internal(errors.New("checkpoint: the root filesystem store cannot list a container's changes"))
	}
	stage, err := m.checkpointStage(c.ID())
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	rec, err := m.dumpRunning(ctx, c, criu, stage, changes)
	if err != nil {
		return err
	}
	if rec.LogPath != "" {
		if err := copyFile(rec.LogPath, filepath.Join(stage, ContainerLogFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("checkpoint container %s: copy its log: %w", rec.ID, err)
		}
	}
	if err := writeArchive(stage, o.Location); err != nil {
		return fmt.Errorf("checkpoint container %s: %w", rec.ID, err)
	}
	logFor(rec.ID).Infof("checkpointed to %s", o.Location)
	return nil
}

// dumpRunning writes the checkpoint's metadata, dump and layer changes
// into stage under c.ops, so that no start, update or exit's delete meets
// the dump (an exit is recorded once it is done); the archive is written
// after, without the lock.
func (m *Manager) dumpRunning(ctx context.Context, c *Container, criu, stage string, changes rootfsChanges) (Record, error) {
	c.ops.Lock()
	defer c.ops.Unlock()
	rec := c.Record()
	if rec.State != StateRunning {
		return rec, errdefs.FailedPreconditionf("container %s is %s: only a running container can be checkpointed", rec.ID, rec.State)
	}
	spec, err := c.Spec()
	if err != nil {
		return rec, err
	}
	if err := writeCheckpointMetadata(stage, &rec, spec); err != nil {
		return rec, err
	}
	return rec, m.dumpAndDiff(ctx, &rec, criu, stage, changes, spec)
}

// dumpAndDiff has CRIU dump c into stage/checkpoint, leaving it running,
// then writes its layer's changes.
//
// For a single container, CRIU freezes it (its cgroup freezer) for the
// dump and thaws it when done, whether it succeeded or not and whether
// berthd still waits for it or not: no end of berthd's can leave it
// frozen. The price is that the layer's changes are read just after the
// dump, while the container runs again: a file it writes in between is
// newer in the archive than in the memory image (CRI-O freezes the
// container across both, and a crash in between leaves it frozen). A
// pod checkpoint pauses its containers first (CRIU then leaves the
// freezer FROZEN) and reads the changes before it resumes them; see
// checkpoint_pod.go for how a crash in between is undone.
func (m *Manager) dumpAndDiff(ctx context.Context, rec *Record, criu, stage string, changes rootfsChanges, spec []byte) error {
	rt, id := rec.Runtime, rec.ID
	if err := rt.checkpointDump(ctx, id, criu, filepath.Join(stage, metadata.CheckpointDirectory), stage); err != nil {
		return err
	}
	var s rspec.Spec
	if err := json.Unmarshal(spec, &s); err != nil {
		return fmt.Errorf("checkpoint container %s: parse its spec: %w", id, err)
	}
	skip := make([]string, 0, len(s.Mounts))
	for _, mnt := range s.Mounts {
		skip = append(skip, mnt.Destination)
	}
	f, err := os.OpenFile(filepath.Join(stage, metadata.RootFsDiffTar), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	deleted, err := changes.WriteContainerChanges(id, skip, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("checkpoint container %s: %w", id, err)
	}
	if len(deleted) > 0 {
		if _, err := metadata.WriteJSONFile(deleted, stage, metadata.DeletedFilesFile); err != nil {
			return fmt.Errorf("checkpoint container %s: %w", id, err)
		}
	}
	return nil
}

// checkpointStage makes the directory a checkpoint is assembled in, under
// berthd's root (on disk: CRIU's images hold the container's memory,
// which the run root's tmpfs would hold in RAM a second time). What a
// crash leaves there is removed by sweepCheckpointStages.
func (m *Manager) checkpointStage(id string) (string, error) {
	dir := filepath.Join(m.opts.Root, "checkpoints")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return os.MkdirTemp(dir, id+"-")
}

// sweepCheckpointStages removes the staging directories of checkpoints a
// crash cut short, resuming what a pod checkpoint left paused; called
// before any checkpoint can run.
func (m *Manager) sweepCheckpointStages() {
	dir := filepath.Join(m.opts.Root, "checkpoints")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		// A pod checkpoint cut short may have left its containers paused.
		recoverPodCheckpoint(m.ctx, filepath.Join(dir, e.Name()))
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			logFor(e.Name()).Warnf("remove a checkpoint's leftovers: %v", err)
		}
	}
}

// writeCheckpointMetadata writes spec.dump (the bundle's spec, whose
// io.kubernetes.cri.* annotations checkpointctl reads for the container
// and pod names) and config.dump.
func writeCheckpointMetadata(stage string, rec *Record, spec []byte) error {
	if err := os.WriteFile(filepath.Join(stage, metadata.SpecDumpFile), spec, 0o600); err != nil {
		return err
	}
	cfg := metadata.ContainerConfig{
		ID:              rec.ID,
		Name:            rec.Name,
		RootfsImage:     rec.Image,
		RootfsImageRef:  rec.ImageID,
		RootfsImageName: rec.Image,
		OCIRuntime:      rec.Runtime.Handler,
		CreatedTime:     rec.CreatedAt,
		CheckpointedAt:  time.Now(),
	}
	_, err := metadata.WriteJSONFile(&cfg, stage, metadata.ConfigDumpFile)
	return err
}

// checkArchiveLocation refuses a location that is not an absolute path in
// an existing directory, or names something other than a regular file.
func checkArchiveLocation(loc string) error {
	if loc == "" {
		return errdefs.Invalidf("checkpoint location is empty: name the archive to write")
	}
	if !filepath.IsAbs(loc) {
		return errdefs.Invalidf("checkpoint location %q is not an absolute path", loc)
	}
	if st, err := os.Stat(filepath.Dir(loc)); err != nil || !st.IsDir() {
		return errdefs.Invalidf("checkpoint location %q: its directory does not exist", loc)
	}
	if st, err := os.Lstat(loc); err == nil && !st.Mode().IsRegular() {
		return errdefs.Invalidf("checkpoint location %q exists and is not a regular file", loc)
	}
	return nil
}

// writeArchive tars stage (uncompressed, as CRI-O writes it: most of it is
// memory pages) into a temporary file beside loc, syncs it and renames it
// to loc. Readable by root only: it holds every page of the container's
// memory.
func writeArchive(stage, loc string) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(loc), "."+filepath.Base(loc)+".tmp-")
	if err != nil {
		return fmt.Errorf("write archive: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return err
	}
	rd, err := archive.TarWithOptions(stage, &archive.TarOptions{Compression: archive.Uncompressed})
	if err != nil {
		return fmt.Errorf("write archive: %w", err)
	}
	defer rd.Close()
	if _, err := io.Copy(tmp, rd); err != nil {
		return fmt.Errorf("write archive %s: %w", loc, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write archive %s: %w", loc, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write archive %s: %w", loc, err)
	}
	if err := os.Rename(tmp.Name(), loc); err != nil {
		return fmt.Errorf("write archive %s: %w", loc, err)
	}
	return nil
}

// copyFile copies src to a new file dst.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
