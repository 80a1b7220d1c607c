package oci

// Reading a pod checkpoint for RestorePod. The directory is the caller's
// and may be hostile: pod.json is bounded and checked, each archive it
// names must be a plain file name of Berth's form, a regular file (not a
// symlink) in the directory, and is unpacked with the single-container
// restore's checks (checkpoint_archive.go). All of it happens before
// RestorePod makes anything; the directory is only read.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"

	metadata "github.com/checkpoint-restore/checkpointctl/lib"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/errdefs"
	"github.com/berth-cri/berth/steptrace"
)

// maxPodContainers bounds the containers of a pod checkpoint.
const maxPodContainers = 256

// podArchiveName is the only form an archive's name in pod.json takes.
var podArchiveName = regexp.MustCompile(`^container-[0-9]{1,4}\.tar$`)

// PodCheckpoint is a pod checkpoint read for a restore: its manifest
// checked and every container's archive unpacked and checked. Close
// removes what was unpacked.
type PodCheckpoint struct {
	// Dir is the checkpoint's directory.
	Dir string
	// RuntimeHandler is the handler the pod ran with.
	RuntimeHandler string
	// Pod is the pod's config as CheckpointPod was given it.
	Pod json.RawMessage
	// Names are the containers' names, in the manifest's order.
	Names      []string
	containers map[string]*PreparedRestore
	stages     []string
}

// PreparedRestore is one container of a pod checkpoint, unpacked: what
// CreateRequest.Restore takes. It is used once.
type PreparedRestore struct {
	// Archive is the archive's path (informational).
	Archive  string
	stage    string
	contents *checkpointContents
	spec     rspec.Spec

	mu   sync.Mutex
	used bool
}

// take claims the prepared restore for one create.
func (p *PreparedRestore) take() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.used {
		return false
	}
	p.used = true
	return true
}

// OpenPodCheckpoint reads the pod checkpoint in dir. Anything wrong with
// it is InvalidArgument; nothing is left behind on error.
func (m *Manager) OpenPodCheckpoint(ctx context.Context, dir string) (_ *PodCheckpoint, retErr error) {
	defer steptrace.Begin(ctx, "unpack pod checkpoint")()
	if dir == "" || !filepath.IsAbs(dir) {
		return nil, errdefs.Invalidf("checkpoint_path %q is not an absolute path", dir)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, errdefs.Invalidf("checkpoint_path %q: %v", dir, err)
	}
	defer root.Close()
	var man podCheckpointManifest
	if err := readJSONIn(root, PodManifestFile, &man); err != nil {
		return nil, errdefs.Invalidf("pod checkpoint %s: %v", dir, err)
	}
	if err := checkPodManifest(&man); err != nil {
		return nil, errdefs.Invalidf("pod checkpoint %s: %s: %v", dir, PodManifestFile, err)
	}
	pc := &PodCheckpoint{Dir: dir, RuntimeHandler: man.RuntimeHandler, Pod: man.Pod, containers: map[string]*PreparedRestore{}}
	defer func() {
		if retErr != nil {
			pc.Close()
		}
	}()
	for _, e := range man.Containers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p, err := m.prepareRestore(root, dir, e, pc)
		if err != nil {
			return nil, err
		}
		pc.Names = append(pc.Names, e.Name)
		pc.containers[e.Name] = p
	}
	return pc, nil
}

// checkPodManifest checks what pod.json says of itself.
func checkPodManifest(man *podCheckpointManifest) error {
	if man.Version != podManifestVersion {
		return fmt.Errorf("version %d: this Berth reads version %d", man.Version, podManifestVersion)
	}
	if len(man.Containers) == 0 || len(man.Containers) > maxPodContainers {
		return fmt.Errorf("%d containers: want 1 to %d", len(man.Containers), maxPodContainers)
	}
	names, archives := map[string]bool{}, map[string]bool{}
	for _, e := range man.Containers {
		if e.Name == "" || len(e.Name) > 253 || strings.ContainsAny(e.Name, "/\x00 \t\n") {
			return fmt.Errorf("container name %q is not a container name", e.Name)
		}
		if !podArchiveName.MatchString(e.Archive) {
			return fmt.Errorf("container %s: archive %q is not of the form container-N.tar", e.Name, e.Archive)
		}
		if names[e.Name] || archives[e.Archive] {
			return fmt.Errorf("container %s or its archive %s appears twice", e.Name, e.Archive)
		}
		names[e.Name], archives[e.Archive] = true, true
	}
	return nil
}

// prepareRestore unpacks and checks one container's archive into a
// stage of its own, recorded in pc for Close.
func (m *Manager) prepareRestore(root *os.Root, dir string, e podCheckpointEntry, pc *PodCheckpoint) (*PreparedRestore, error) {
	src := filepath.Join(dir, e.Archive)
	st, err := root.Lstat(e.Archive)
	if err != nil || !st.Mode().IsRegular() {
		return nil, errdefs.Invalidf("pod checkpoint %s: container %s: %s is missing or not a regular file", dir, e.Name, e.Archive)
	}
	f, err := root.OpenFile(e.Archive, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, errdefs.Invalidf("pod checkpoint %s: container %s: %v", dir, e.Name, err)
	}
	defer f.Close()
	stage, err := m.checkpointStage("restore-" + e.Archive)
	if err != nil {
		return nil, err
	}
	pc.stages = append(pc.stages, stage)
	cc, err := unpackCheckpoint(openedArchive(f, src), stage)
	if err != nil {
		return nil, err
	}
	if cc.Config.Name != e.Name {
		return nil, errdefs.Invalidf("pod checkpoint %s: %s is the checkpoint of container %q, not %q", dir, e.Archive, cc.Config.Name, e.Name)
	}
	p := &PreparedRestore{Archive: src, stage: stage, contents: cc}
	sroot, err := os.OpenRoot(stage)
	if err != nil {
		return nil, err
	}
	defer sroot.Close()
	if err := readJSONIn(sroot, metadata.SpecDumpFile, &p.spec); err != nil {
		return nil, errdefs.Invalidf("checkpoint archive %s: %v", src, err)
	}
	if p.spec.Process == nil {
		return nil, errdefs.Invalidf("checkpoint archive %s: spec.dump has no process", src)
	}
	return p, nil
}

// Container is the prepared restore of the container named name, nil if
// the checkpoint has none.
func (pc *PodCheckpoint) Container(name string) *PreparedRestore {
	return pc.containers[name]
}

// Close removes what was unpacked and not taken by a restored container
// (its CRIU images move to the container).
func (pc *PodCheckpoint) Close() {
	for _, s := range pc.stages {
		if err := os.RemoveAll(s); err != nil {
			logFor(filepath.Base(s)).Warnf("remove an unpacked pod checkpoint: %v", err)
		}
	}
	pc.stages = nil
}

// CheckConfig refuses a restore-time container config that does not
// describe the checkpointed process: the image (by the name, reference
// or id dumped), the command and args, working directory, environment
// and user and group, where the config sets them. The checkpoint, not
// the config, decides what runs; a mismatch is InvalidArgument.
func (p *PreparedRestore) CheckConfig(cfg *runtimeapi.ContainerConfig) error {
	name := cfg.GetMetadata().GetName()
	proc := p.spec.Process
	mismatch := func(what string, want, got any) error {
		return errdefs.Invalidf("container %s: the config's %s %v is not the checkpointed process's %v", name, what, want, got)
	}
	if img := cfg.GetImage().GetImage(); img != "" {
		c := p.contents.Config
		known := []string{c.RootfsImage, c.RootfsImageName, c.RootfsImageRef, strings.TrimPrefix(c.RootfsImageRef, "sha256:")}
		if !slices.Contains(known, img) && !slices.Contains(known, strings.TrimPrefix(img, "sha256:")) {
			return mismatch("image", img, c.RootfsImageName)
		}
	}
	if cmd := cfg.GetCommand(); len(cmd) > 0 {
		if want := append(slices.Clone(cmd), cfg.GetArgs()...); !slices.Equal(want, proc.Args) {
			return mismatch("command and args", want, proc.Args)
		}
	} else if args := cfg.GetArgs(); len(args) > 0 {
		if len(proc.Args) < len(args) || !slices.Equal(proc.Args[len(proc.Args)-len(args):], args) {
			return mismatch("args", args, proc.Args)
		}
	}
	if wd := cfg.GetWorkingDir(); wd != "" && filepath.Clean(wd) != filepath.Clean(proc.Cwd) {
		return mismatch("working directory", wd, proc.Cwd)
	}
	for _, kv := range cfg.GetEnvs() {
		if e := kv.GetKey() + "=" + string(kv.GetValue()); !slices.Contains(proc.Env, e) {
			return mismatch("environment variable", e, "environment")
		}
	}
	sc := cfg.GetLinux().GetSecurityContext()
	if u := sc.GetRunAsUser(); u != nil && u.GetValue() != int64(proc.User.UID) {
		return mismatch("run_as_user", u.GetValue(), proc.User.UID)
	}
	if g := sc.GetRunAsGroup(); g != nil && g.GetValue() != int64(proc.User.GID) {
		return mismatch("run_as_group", g.GetValue(), proc.User.GID)
	}
	return nil
}
