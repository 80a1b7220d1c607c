package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-cri/berth/cgroupdriver"
)

// Runtime is one runtime handler: a runc-compatible binary and its state
// directory. Every call is the binary's CLI as runc defines it, so any
// such runtime (berth-runner, runc, crun) works.
type Runtime struct {
	// Handler is the CRI runtime handler name.
	Handler string
	// Path is the runtime binary.
	Path string
	// Root is the runtime's --root state directory.
	Root string
	// VM marks a VM runtime (every pod gets an infra container).
	VM bool
	// SystemdCgroup gives the runtime --systemd-cgroup: the container's
	// cgroup is a systemd scope (its pod's cgroup is a slice). It is the
	// container's, set at create from its pod's cgroup (see
	// cgroupdriver.Of), and kept in its record.
	SystemdCgroup bool `json:",omitempty"`
}

// globalArgs are the runtime's global flags for this container.
func (r *Runtime) globalArgs() []string {
	if r.SystemdCgroup {
		return []string{"--systemd-cgroup"}
	}
	return nil
}

// forPod is the runtime for a container of the pod whose cgroup is
// podCgroup: with --systemd-cgroup when that is a slice.
func (r Runtime) forPod(podCgroup string) Runtime {
	r.SystemdCgroup = cgroupdriver.Of(podCgroup) == cgroupdriver.Systemd
	return r
}

// ErrNotExist is returned (wrapped) when the runtime does not know the
// container.
var ErrNotExist = errors.New("container does not exist in the runtime")

// run runs one runtime subcommand and returns its stdout. Its stderr
// becomes the error's text: runtimes explain themselves there.
func (r *Runtime) run(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	full := append(append([]string{"--root", r.Root}, r.globalArgs()...), args...)
	cmd := exec.CommandContext(ctx, r.Path, full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	// The runtime must not share berthd's process group: a terminal's
	// ^C to berthd in the foreground would reach it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Run(); err != nil {
		msg := runtimeMessage(stderr.String())
		if notExist(msg) {
			err = ErrNotExist
		}
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return stdout.Bytes(), fmt.Errorf("%s %s: %w: %s", filepath.Base(r.Path), strings.Join(args, " "), err, msg)
	}
	return stdout.Bytes(), nil
}

// runtimeMessage picks the message out of a runtime's stderr, which runc
// writes as logrus text or JSON lines.
func runtimeMessage(stderr string) string {
	stderr = strings.TrimSpace(stderr)
	lines := strings.Split(stderr, "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	var j struct {
		Msg string `json:"msg"`
	}
	if json.Unmarshal([]byte(last), &j) == nil && j.Msg != "" {
		return j.Msg
	}
	if i := strings.Index(last, `msg="`); i >= 0 {
		m := last[i+len(`msg="`):]
		if k := strings.LastIndex(m, `"`); k >= 0 {
			m = m[:k]
		}
		return strings.ReplaceAll(m, `\"`, `"`)
	}
	return stderr
}

// notExist recognises the runtimes' "no such container" answers; the CLI
// has no exit code for it, so the words are all there is.
func notExist(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "does not exist") || strings.Contains(m, "not found") || strings.Contains(m, "no such")
}

// Start runs `start ID`: the created container's process execs its command.
func (r *Runtime) Start(ctx context.Context, id string) error {
	_, err := r.run(ctx, nil, "start", id)
	return err
}

// Kill sends sig to the container's init, or with all to every process
// of the container (for containers that share a PID namespace, where the
// init's death does not take the rest along).
func (r *Runtime) Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error {
	args := []string{"kill"}
	if all {
		args = append(args, "--all")
	}
	_, err := r.run(ctx, nil, append(args, id, fmt.Sprint(int(sig)))...)
	return err
}

// Delete runs `delete --force ID`, which kills what still runs and frees
// the runtime's state and the container's cgroup. A container the runtime
// does not know is already deleted.
func (r *Runtime) Delete(ctx context.Context, id string) error {
	_, err := r.run(ctx, nil, "delete", "--force", id)
	if errors.Is(err, ErrNotExist) {
		return nil
	}
	return err
}

// State is the runtime's view of a container (`state ID`).
func (r *Runtime) State(ctx context.Context, id string) (*rspec.State, error) {
	out, err := r.run(ctx, nil, "state", id)
	if err != nil {
		return nil, err
	}
	var st rspec.State
	if err := json.Unmarshal(out, &st); err != nil {
		return nil, fmt.Errorf("%s state %s: parse %q: %w", filepath.Base(r.Path), id, out, err)
	}
	return &st, nil
}

// Update applies new cgroup limits (`update --resources - ID`).
func (r *Runtime) Update(ctx context.Context, id string, res *rspec.LinuxResources) error {
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	_, err = r.run(ctx, b, "update", "--resources", "-", id)
	return err
}
