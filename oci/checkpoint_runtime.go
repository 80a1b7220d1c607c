package oci

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"github.com/berth-cri/berth/errdefs"
)

// checkpointDump runs `checkpoint --leave-running` with the images
// written to imageDir and CRIU's dump.log and stats-dump to workDir. criu
// is the CRIU binary: runc since 1.2 (and berth-runner, through
// libcontainer) runs "criu" from PATH and has no flag for another one, so
// its directory goes first in the runtime's PATH, which every runc
// version honours.
//
// A dump CRIU refuses is FailedPrecondition, with CRIU's own reasons from
// its log: the runtime itself only says "criu failed: type DUMP".
func (r *Runtime) checkpointDump(ctx context.Context, id, criu, imageDir, workDir string) error {
	args := append(append([]string{"--root", r.Root}, r.globalArgs()...),
		"checkpoint", "--image-path", imageDir, "--work-path", workDir, "--leave-running", id)
	cmd := exec.CommandContext(ctx, r.Path, args...)
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(criu)+string(os.PathListSeparator)+os.Getenv("PATH"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("checkpoint container %s: %w", id, ctx.Err())
	}
	reasons := criuErrors(filepath.Join(workDir, "dump.log"))
	if len(reasons) == 0 {
		return fmt.Errorf("checkpoint container %s: %s: %w: %s", id, filepath.Base(r.Path), err, runtimeMessage(stderr.String()))
	}
	return errdefs.FailedPreconditionf("checkpoint container %s: CRIU cannot dump it: %s", id, strings.Join(reasons, "; "))
}

// criuLogError is an error line of a CRIU log: "(00.137231) Error
// (criu/files-reg.c:1790): Can't lookup mount=27 for fd=1 path=/x".
var criuLogError = regexp.MustCompile(`Error \([^)]*\): (.+)$`)

// criuErrors are the distinct errors a CRIU log reports, in order, less
// the ones that say nothing of the container: the summary CRIU ends a
// failed dump or restore with, and its complaint that it could not raise its own
// open-file limit (it goes on without; root here lacks
// CAP_SYS_RESOURCE).
func criuErrors(logPath string) []string {
	f, err := os.Open(logPath)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	seen := map[string]bool{}
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	for s.Scan() {
		m := criuLogError.FindStringSubmatch(s.Text())
		if m == nil {
			continue
		}
		msg := strings.TrimSpace(m[1])
		if seen[msg] || strings.HasPrefix(msg, "Dumping FAILED") || strings.HasPrefix(msg, "Restoring FAILED") ||
			strings.HasPrefix(msg, "rlimit: Can't setup RLIMIT_NOFILE") {
			continue
		}
		seen[msg] = true
		out = append(out, msg)
		if len(out) == 8 {
			break
		}
	}
	return out
}

// findCriu resolves the CRIU binary: the configured path, or criu from
// berthd's PATH. The runtimes run it by the name criu, so a configured
// binary must carry that name.
func findCriu(configured string) (string, error) {
	if configured == "" {
		p, err := exec.LookPath("criu")
		if err != nil {
			return "", errdefs.FailedPreconditionf("checkpoint needs CRIU: no criu in PATH (set runtime.criu_path; `make criu` builds one)")
		}
		return filepath.Abs(p)
	}
	if filepath.Base(configured) != "criu" {
		return "", errdefs.FailedPreconditionf("runtime.criu_path %s: the binary must be named criu (runtimes run criu from PATH)", configured)
	}
	st, err := os.Stat(configured)
	if err != nil {
		return "", errdefs.FailedPreconditionf("runtime.criu_path: %v", err)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return "", errdefs.FailedPreconditionf("runtime.criu_path %s: not an executable file", configured)
	}
	return filepath.Abs(configured)
}

// Pause freezes every process of the container (`pause ID`): its cgroup
// freezer.
func (r *Runtime) Pause(ctx context.Context, id string) error {
	_, err := r.run(ctx, nil, "pause", id)
	return err
}

// Resume thaws a paused container (`resume ID`).
func (r *Runtime) Resume(ctx context.Context, id string) error {
	_, err := r.run(ctx, nil, "resume", id)
	return err
}
