package oci

// Restoring a container from a checkpoint archive (CheckpointContainer's,
// or CRI-O's), as CRI-O does: CreateContainer whose image is the
// archive's path.
//
// CREATED until StartContainer: CreateContainer validates and unpacks the
// archive, makes the root filesystem from the archive's image with its
// layer changes, writes the bundle for the new pod and records the
// container CREATED, with no monitor and no runtime state yet (CRIU's
// restore both creates and resumes the processes, so there is nothing
// for a runtime to hold in between). ContainerStatus meanwhile shows it
// CREATED with no pid, as any created container. StartContainer spawns
// the monitor in restore mode, which runs the runtime's `restore
// --detach` and from then on owns the container as after a create. A
// failed restore at StartContainer leaves no monitor and no runtime state,
// and the container CREATED (StartContainer may be retried; Remove
// removes the rest).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	metadata "github.com/checkpoint-restore/checkpointctl/lib"
	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/cgroups"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/cgroupdriver"
	"github.com/berth-cri/berth/errdefs"
	"github.com/berth-cri/berth/ids"
	"github.com/berth-cri/berth/monitorclient"
	"github.com/berth-cri/berth/record"
	"github.com/berth-cri/berth/steptrace"
)

// RestoreSource is what a container restored from a checkpoint keeps in
// its record until StartContainer has restored it.
type RestoreSource struct {
	// Archive is the checkpoint archive it was made from (informational).
	Archive string `json:"archive"`
	// CriuPath is the CRIU binary the restore runs.
	CriuPath string `json:"criuPath"`
	// Done is set once the runtime restored it: a berthd restart then
	// adopts it as any container.
	Done bool `json:"done,omitempty"`
}

// checkpointImages is what the store offers for a restore from an image
// made of a checkpoint archive (storage.Store has it): nil open for an
// image that is not one.
type checkpointImages interface {
	CheckpointImage(ctx context.Context, image string) (open func() (io.ReadCloser, error), err error)
}

// checkpointToRestore is the checkpoint a CreateContainer image names,
// nil for an ordinary image: an absolute path is an archive; an image in
// the store marked as a checkpoint image is one too. Any other image,
// pulled or not, is left to the ordinary create.
func (m *Manager) checkpointToRestore(ctx context.Context, image string) (*checkpointSource, error) {
	if IsCheckpointArchive(image) {
		src := archiveFile(image)
		return &src, nil
	}
	store, ok := m.opts.Rootfs.(checkpointImages)
	if !ok {
		return nil, nil
	}
	open, err := store.CheckpointImage(ctx, image)
	if err != nil || open == nil {
		return nil, err
	}
	return &checkpointSource{name: image, open: open}, nil
}

// IsCheckpointArchive says whether a CreateContainer image names a
// checkpoint archive rather than an image: an absolute path, which no
// image reference is.
func IsCheckpointArchive(image string) bool {
	return strings.HasPrefix(image, "/")
}

// rootfsApplier is what the store offers for a restore (storage.Store
// has it): a checkpoint's layer changes put on a container's root
// filesystem.
type rootfsApplier interface {
	ApplyContainerChanges(id string, diff io.Reader, deleted []string) error
}

// checkpointImages is where a restored container's CRIU images are kept
// until it is removed: its record's directory, on disk.
func (p paths) checkpointImages() string { return filepath.Join(p.dir, metadata.CheckpointDirectory) }

// restoreWork is where the runtime and CRIU write restore.log.
func (p paths) restoreWork() string { return filepath.Join(p.run, "restore") }

// unmountRestoreWork detaches what a CRIU killed mid-restore left mounted
// in its work directory (its cgroup yard, .criu.cgyard.*: a tmpfs with
// the node's cgroup hierarchies mounted in it), deepest first, so that
// removing the directory neither fails nor descends into the node's
// cgroups. A CRIU that finished, well or not, leaves nothing there.
func unmountRestoreWork(p paths) error {
	dir := p.restoreWork()
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return err
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].Mountpoint) > len(mounts[j].Mountpoint) })
	for _, m := range mounts {
		if err := unix.Unmount(m.Mountpoint, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("unmount %s: %w", m.Mountpoint, err)
		}
	}
	return nil
}

// createRestored is create for a request whose image is a checkpoint
// archive. The archive is checked and unpacked before anything of the
// container exists; from the record on, a failure tears everything down.
//
// src is the archive (or checkpoint image) to unpack, unless the request
// carries a pod checkpoint's container already unpacked (req.Restore).
func (m *Manager) createRestored(ctx context.Context, req *CreateRequest, src checkpointSource) (_ *Container, retErr error) {
	spec := req.Spec
	cfg := spec.Config
	archive := src.name
	if req.Restore != nil {
		archive = req.Restore.Archive
	}
	switch {
	case cfg.GetTty():
		return nil, errdefs.Invalidf("restore from %s: a container with a terminal cannot be restored", archive)
	case spec.Pod.UserNS != nil:
		return nil, errdefs.Unimplementedf("restore from %s: restoring into a pod with its own user namespace is not supported", archive)
	case cfg.GetLinux().GetSecurityContext().GetNamespaceOptions().GetPid() == runtimeapi.NamespaceMode_TARGET:
		return nil, errdefs.Invalidf("restore from %s: PID mode TARGET cannot be restored", archive)
	}
	applier, ok := m.opts.Rootfs.(rootfsApplier)
	if !ok {
		return nil, errdefs.Internal(errors.New("restore: the root filesystem store cannot apply a checkpoint's changes"))
	}
	criu, err := findCriu(req.CriuPath)
	if err != nil {
		return nil, err
	}
	spec.ID = ids.New()
	id := spec.ID
	stage, cc, err := m.restoreSource(ctx, id, req.Restore, src)
	if err != nil {
		return nil, err
	}
	if req.Restore == nil {
		defer os.RemoveAll(stage)
	}

	// The container is made from the checkpoint's image: the request's
	// config with the image replaced (by id, the exact image dumped).
	cfg = proto.Clone(cfg).(*runtimeapi.ContainerConfig)
	image := cc.Config.RootfsImageRef
	if image == "" {
		image = cc.Config.RootfsImageName
	}
	userImage := cc.Config.RootfsImageName
	if userImage == "" {
		userImage = cc.Config.RootfsImage
	}
	cfg.Image = &runtimeapi.ImageSpec{Image: image, UserSpecifiedImage: userImage}
	spec.Config = cfg

	c := m.newCreating(req.Runtime, &spec)
	told := false
	defer func() {
		if retErr != nil {
			if err := m.teardown(context.WithoutCancel(ctx), c); err != nil {
				logFor(id).Errorf("clean up failed restore: %v", err)
			}
			if told {
				m.changed(context.WithoutCancel(ctx), c, StepCreateFailed)
			}
		}
	}()
	if err := c.recordCreating(ctx, spec.Pod.LogDirectory, cfg.GetLogPath(), &RestoreSource{Archive: archive, CriuPath: criu}); err != nil {
		return nil, err
	}
	img, err := m.makeRootfs(ctx, &spec)
	if errdefs.IsNotFound(err) {
		return nil, errdefs.FailedPreconditionf("restore from %s: the checkpoint's image %s (%s) is not in the image store: pull it first", archive, userImage, image)
	}
	if err != nil {
		return nil, err
	}
	c.define(func(md *Metadata) {
		md.Image, md.ImageRef, md.ImageID = spec.ImageName, img.Ref, img.ID
		md.StopSignal = stopSignal(cfg.GetStopSignal().String(), spec.Image.StopSignal)
	})
	if err := applyCheckpointChanges(ctx, applier, id, stage, cc); err != nil {
		return nil, err
	}
	// The CRIU images stay with the container until it is removed.
	if err := os.Rename(filepath.Join(stage, metadata.CheckpointDirectory), c.paths.checkpointImages()); err != nil {
		return nil, fmt.Errorf("restore container %s: keep its CRIU images: %w", id, err)
	}

	gen, err := Generate(&spec)
	if err != nil {
		return nil, err
	}
	ch := &Change{Step: StepCreate, Container: c, Spec: gen.Spec}
	if err := m.changing(ctx, ch); err != nil {
		return nil, err
	}
	told = true
	c.define(func(md *Metadata) {
		md.User = gen.User
		md.Mounts = gen.Mounts
		md.SharedPID = sharesPIDNamespace(gen.Spec)
	})
	if err := m.writeBundle(ctx, c, gen.Spec); err != nil {
		return nil, err
	}
	if err := restoreLog(c.rec.LogDir, c.rec.LogPath, filepath.Join(stage, ContainerLogFile)); err != nil {
		return nil, fmt.Errorf("restore container %s: its log: %w", id, err)
	}
	if err := c.update(record.Durable, func(st *Status) error {
		st.State = StateCreated
		return nil
	}); err != nil {
		return nil, err
	}
	m.add(c)
	m.changed(ctx, c, StepCreated)
	logFor(id).Infof("prepared to restore from %s (checkpoint of container %s)", archive, cc.Config.ID)
	return c, nil
}

// restoreSource is the unpacked checkpoint a restore is made from: the
// pod checkpoint's, prepared, or the archive unpacked now into a stage
// the caller removes.
func (m *Manager) restoreSource(ctx context.Context, id string, prepared *PreparedRestore, src checkpointSource) (string, *checkpointContents, error) {
	if prepared != nil {
		if !prepared.take() {
			return "", nil, errdefs.Invalidf("restore from %s: its checkpoint was used already", prepared.Archive)
		}
		return prepared.stage, prepared.contents, nil
	}
	defer steptrace.Begin(ctx, "unpack checkpoint")()
	stage, err := m.checkpointStage(id)
	if err != nil {
		return "", nil, err
	}
	cc, err := unpackCheckpoint(src, stage)
	if err != nil {
		os.RemoveAll(stage)
		return "", nil, err
	}
	return stage, cc, nil
}

// applyCheckpointChanges puts rootfs-diff.tar and deleted.files on the
// container's root filesystem, through the store.
func applyCheckpointChanges(ctx context.Context, applier rootfsApplier, id, stage string, cc *checkpointContents) error {
	defer steptrace.Begin(ctx, "apply layer changes")()
	var diff io.Reader
	if cc.HasDiff {
		f, err := os.Open(filepath.Join(stage, metadata.RootFsDiffTar))
		if err != nil {
			return err
		}
		defer f.Close()
		diff = f
	}
	if err := applier.ApplyContainerChanges(id, diff, cc.Deleted); err != nil {
		return errdefs.Invalidf("restore container %s: %v", id, err)
	}
	return nil
}

// restoreLog starts the new container's CRI log with the checkpointed
// container's (container.log), so its log reads on across the restore.
// The file is made beneath the pod's log directory without following
// symlinks; the archive's log is optional.
func restoreLog(dir, logPath, saved string) error {
	if logPath == "" {
		return nil
	}
	in, err := os.Open(saved)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer in.Close()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	rel, err := filepath.Rel(dir, logPath)
	if err != nil {
		return err
	}
	out, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o640)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// restorePending says c was made from a checkpoint and StartContainer has
// not restored it yet: it has no monitor and no runtime state.
func (r *Record) restorePending() bool {
	return r.Restore != nil && !r.Restore.Done
}

// startRestored is Start for a restore pending (c.ops held): the monitor
// runs the runtime's restore, and the container is running once it
// reported. On failure no monitor and no runtime state are left, and the
// container is still CREATED.
func (m *Manager) startRestored(ctx context.Context, c *Container) error {
	c.mu.Lock()
	rec := c.rec.clone()
	c.mu.Unlock()
	id := rec.ID
	started := time.Now()
	if err := m.changing(ctx, &Change{Step: StepStart, Container: c}); err != nil {
		return err
	}
	work := c.paths.restoreWork()
	os.RemoveAll(work) // an earlier attempt's log
	if err := os.MkdirAll(work, 0o700); err != nil {
		return fmt.Errorf("restore container %s: %w", id, err)
	}
	cfg := m.monitorConfig(c)
	cfg.RestoreImagePath = c.paths.checkpointImages()
	cfg.RestoreWorkPath = work
	cfg.CriuPath = rec.Restore.CriuPath
	endRestore := steptrace.Begin(ctx, "monitor and runtime restore")
	st, err := monitorclient.Start(ctx, m.opts.MonitorPath, cfg)
	endRestore()
	if err != nil {
		// The monitor is gone and cleaned the runtime up; make sure
		// (a restore cancelled with ctx killed CRIU midway).
		if derr := rec.Runtime.Delete(context.WithoutCancel(ctx), id); derr != nil {
			logFor(id).Warnf("delete after a failed restore: %v", derr)
		}
		if uerr := unmountRestoreWork(c.paths); uerr != nil {
			logFor(id).Warnf("after a failed restore: %v", uerr)
		}
		os.Remove(c.paths.exit)
		if errors.Is(err, monitorclient.ErrMonitorTooOld) {
			return errdefs.FailedPreconditionf("restore container %s: %v", id, err)
		}
		if reasons := criuErrors(filepath.Join(work, "restore.log")); len(reasons) > 0 {
			return errdefs.FailedPreconditionf("restore container %s: CRIU cannot restore it: %s", id, strings.Join(reasons, "; "))
		}
		return fmt.Errorf("restore container %s: %w", id, err)
	}
	steptrace.Add(ctx, "runtime restore (in the monitor)", st.RuntimeTime)
	monStart, _ := procStartTime(st.MonitorPID) // 0 if gone: found by --id
	err = c.update(record.Durable, func(s *Status) error {
		s.PID, s.MonitorPID, s.MonitorStart = st.ContainerPID, st.MonitorPID, monStart
		s.Restore.Done = true
		s.StartedAt = started
		s.State = StateRunning
		return nil
	})
	if err != nil {
		return err
	}
	m.changed(ctx, c, StepStarted)
	m.watch(c)
	logFor(id).Infof("restored from %s in %s", rec.Restore.Archive, time.Since(started).Round(time.Millisecond))
	return nil
}

// stopUnrestored records the exit of a container stopped before it was
// restored: nothing of it ever ran. done is false if StartContainer
// restored it meanwhile: the caller stops it as any.
func (m *Manager) stopUnrestored(ctx context.Context, c *Container) (done bool, err error) {
	c.ops.Lock() // the status changes only under ops, but for an exit
	rec := c.Record()
	pending := rec.State == StateCreated && rec.restorePending()
	var first bool
	if pending {
		first, err = c.recordExit(&monitorclient.Exit{ExitCode: 137, ExitedAt: time.Now()}, "stopped before StartContainer restored it")
		c.mu.Lock()
		c.freed = true
		c.mu.Unlock()
	}
	c.ops.Unlock()
	if first {
		m.exited(ctx, c)
	}
	return pending || c.Record().State == StateExited, err
}

// adoptUnrestored is adopt for a restore pending at berthd's start. If
// berthd died in StartContainer's restore, its monitor (not yet recorded)
// and the runtime's container are ended and the container counts as
// exited: it may have run. Otherwise it stays CREATED.
func (m *Manager) adoptUnrestored(ctx context.Context, c *Container) (Step, error) {
	id := c.rec.ID
	// A monitor found was running the restore, or supervising its result:
	// CRIU may have restored processes that its killed runtime did not
	// record, so the container may have run.
	stray := killStrayMonitors(id, m.opts.MonitorPath)
	// CRIU's restore leaves the monitor's process group: end it too.
	stray = killStrayCRIU(id, c.paths.checkpointImages()) || stray
	// CRIU may have finished restoring the processes before the runtime
	// recorded them: then no runtime state names them, but their cgroup
	// does.
	stray = killCgroupOf(id, c.paths.spec()) || stray
	_, stateErr := c.rec.Runtime.State(ctx, id)
	_, exitErr := os.Stat(c.paths.exit)
	if !stray && stateErr != nil && errors.Is(exitErr, os.ErrNotExist) {
		return 0, nil
	}
	if err := unmountRestoreWork(c.paths); err != nil {
		logFor(id).Warnf("restore cut short: %v", err)
	}
	if err := c.rec.Runtime.Delete(ctx, id); err != nil {
		logFor(id).Warnf("delete a restore cut short: %v", err)
	}
	return StepExited, m.adoptExit(c, &monitorclient.Exit{ExitCode: 255, ExitedAt: time.Now()},
		"berthd stopped while StartContainer restored the container")
}

// killStrayCRIU SIGKILLs the CRIU processes still restoring from images,
// the container's own image directory, and waits for them to be gone: a
// berthd killed during StartContainer's restore leaves the monitor, which
// killStrayMonitors ends with its process group, and CRIU, which is not
// in that group. A process counts when it runs a binary named criu (the
// name libcontainer requires) and its command line names images. It is
// signalled through a pidfd opened before its identity is read, so a pid
// reused meanwhile is never signalled. It reports whether it found any.
func killStrayCRIU(id, images string) bool {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		logFor(id).Warnf("look for a stray CRIU: %v", err)
		return false
	}
	found := false
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue // gone
		}
		if isCRIUOf(pid, images) {
			found = true
			logFor(id).Infof("killing stray CRIU %d", pid)
			if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err == nil {
				// Readable once the process has exited.
				_, _ = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(strayMonitorWait/time.Millisecond))
			}
		}
		unix.Close(fd)
	}
	return found
}

// isCRIUOf reports whether pid runs a criu binary working on images.
func isCRIUOf(pid int, images string) bool {
	exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil || filepath.Base(strings.TrimSuffix(exe, " (deleted)")) != "criu" {
		return false
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return err == nil && bytes.Contains(cmdline, []byte(images))
}

// killCgroupOf SIGKILLs the processes in the cgroup the container's spec
// (the bundle's config.json) names, until it is empty or
// strayMonitorWait passes, and reports whether it found any. Each is
// signalled through a pidfd, and only while /proc says it is still in that
// cgroup: a pid listed and reused meanwhile is not signalled.
func killCgroupOf(id, specPath string) bool {
	b, err := os.ReadFile(specPath)
	if err != nil {
		return false
	}
	var spec rspec.Spec
	if err := json.Unmarshal(b, &spec); err != nil || spec.Linux == nil || spec.Linux.CgroupsPath == "" {
		return false
	}
	rel := spec.Linux.CgroupsPath
	if parts := strings.Split(rel, ":"); len(parts) == 3 {
		// The systemd form slice:prefix:name: a scope in the pod's slice.
		if rel, err = cgroupdriver.ContainerPath(parts[0], id); err != nil {
			return false
		}
	}
	procs := filepath.Join("/sys/fs/cgroup", "pids", rel, "cgroup.procs")
	if cgroups.IsCgroup2UnifiedMode() {
		procs = filepath.Join("/sys/fs/cgroup", rel, "cgroup.procs")
	}
	found := false
	deadline := time.Now().Add(strayMonitorWait)
	for time.Now().Before(deadline) {
		list, err := os.ReadFile(procs)
		if err != nil || len(bytes.TrimSpace(list)) == 0 {
			return found
		}
		for _, f := range strings.Fields(string(list)) {
			pid, err := strconv.Atoi(f)
			if err != nil {
				continue
			}
			fd, err := unix.PidfdOpen(pid, 0)
			if err != nil {
				continue
			}
			if cg, err := os.ReadFile("/proc/" + f + "/cgroup"); err == nil && bytes.Contains(cg, []byte(":"+rel+"\n")) {
				found = true
				logFor(id).Infof("killing process %d left in the cgroup of a restore cut short", pid)
				_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
			}
			unix.Close(fd)
		}
		time.Sleep(10 * time.Millisecond)
	}
	logFor(id).Warnf("processes still in %s after %s", procs, strayMonitorWait)
	return found
}
