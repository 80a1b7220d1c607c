package monitor

import (
	"errors"
	"path/filepath"
	"strconv"
	"strings"
)

// DefaultMaxLineSize is the longest log line the monitor writes before it
// splits a line into partial ("P") records. 16 KiB is conmon's buffer size,
// and what kubelet's own log parser expects at most.
const DefaultMaxLineSize = 16 * 1024

// Config is everything the monitor needs for one container. berthd passes it
// to the monitor on the monitor's stdin, encoded by Encode (the JSON names
// below are the keys there too).
type Config struct {
	// ID is the container id given to the runtime.
	ID string `json:"id"`
	// Bundle is the OCI bundle directory (holds config.json).
	Bundle string `json:"bundle"`
	// RuntimePath is the OCI runtime binary (runc, crun, berth-runner).
	RuntimePath string `json:"runtime_path"`
	// RuntimeRoot is passed as the runtime's global --root when set.
	RuntimeRoot string `json:"runtime_root,omitempty"`
	// RuntimeArgs are extra global flags placed before the subcommand
	// (e.g. --systemd-cgroup).
	RuntimeArgs []string `json:"runtime_args,omitempty"`
	// CreateArgs are extra flags for the create subcommand
	// (e.g. --no-pivot). Ignored for exec sessions.
	CreateArgs []string `json:"create_args,omitempty"`
	// RuntimeLogPath is the runtime's --log file (JSON lines); its last
	// error becomes Start's error text. Empty means <Bundle>/runtime.log.
	RuntimeLogPath string `json:"runtime_log_path,omitempty"`

	// ExecProcess, when set, makes this an exec session: the monitor runs
	// `<runtime> exec --detach --process ExecProcess ID` instead of create,
	// and the process runs at once (berthd does not call start).
	ExecProcess string `json:"exec_process,omitempty"`

	// RestoreImagePath, when set, makes this a restore: the monitor runs
	// `<runtime> restore --detach --bundle Bundle --image-path
	// RestoreImagePath --work-path RestoreWorkPath ID` instead of create,
	// and the container's processes come back from CRIU's images, already
	// running (berthd does not call start). The restored processes' stdio
	// were pipes at the dump; the runtime maps its own stdio (the
	// monitor's new pipes) onto them, so the monitor owns them as after a
	// create. A monitor built before this field refuses the key
	// (DecodeConfig), so it never runs a create in a restore's place.
	RestoreImagePath string `json:"restore_image_path,omitempty"`
	// RestoreWorkPath is where the runtime and CRIU write restore.log.
	// Required with RestoreImagePath.
	RestoreWorkPath string `json:"restore_work_path,omitempty"`
	// CriuPath is the CRIU binary a restore runs: its directory goes first
	// in the runtime's PATH (runc runs "criu" from PATH). Empty is criu
	// from the monitor's PATH.
	CriuPath string `json:"criu_path,omitempty"`

	// PidFile is where the runtime writes the container's pid (--pid-file).
	// Required.
	PidFile string `json:"pid_file"`
	// ExitFile is where the monitor writes the Exit record when the
	// container's init exits. Required; its directory must exist.
	ExitFile string `json:"exit_file"`
	// LogPath is the CRI log file (kubelet format). Empty discards output.
	LogPath string `json:"log_path,omitempty"`
	// LogDir is the pod's log directory: LogPath is opened beneath it
	// without following symlinks. Empty means LogPath's directory.
	LogDir string `json:"log_dir,omitempty"`
	// MaxLineSize bounds one log record's text; 0 means DefaultMaxLineSize.
	MaxLineSize int `json:"max_line_size,omitempty"`
	// MaxOutput, when positive, is how many bytes of log records each
	// stream writes (timestamps and tags counted); the rest is read (and
	// sent to attach clients) but not written. An exec session whose caller keeps only that much must not
	// fill the run root, a tmpfs, with what a runaway command prints.
	MaxOutput int64 `json:"max_output,omitempty"`
	// AttachSocket is the unix socket serving attach; empty means none.
	AttachSocket string `json:"attach_socket,omitempty"`
	// ControlSocket is the unix socket serving ReopenLog and Ping; empty
	// means none.
	ControlSocket string `json:"control_socket,omitempty"`
	// MonitorLogPath receives the monitor's own diagnostics (appended).
	// Empty discards them.
	MonitorLogPath string `json:"-"`

	// Terminal gives the container a pty (the runtime's --console-socket);
	// its output is logged as stdout.
	Terminal bool `json:"terminal,omitempty"`
	// Stdin keeps the container's stdin open for attach; without it the
	// container reads /dev/null.
	Stdin bool `json:"stdin,omitempty"`
	// StdinOnce closes the container's stdin when the first attach session
	// closes its stdin (kubectl run -i semantics).
	StdinOnce bool `json:"stdin_once,omitempty"`

	// AttachFD, set by StartAttached, is the fd (in the monitor) of an
	// attach connection whose other end the caller holds: an exec session
	// streamed to one client. That client receives all output, with
	// backpressure instead of being dropped when slow, from before the
	// command starts; when it hangs up the command is killed.
	AttachFD int `json:"attach_fd,omitempty"`

	// CgroupPath is the container's memory cgroup directory (absolute, e.g.
	// /sys/fs/cgroup/memory/berth/ID), used to detect OOM kills. Empty means
	// the monitor finds it from /proc/<pid>/cgroup after create.
	CgroupPath string `json:"cgroup_path,omitempty"`
}

// Validate reports the first missing or malformed field. Start calls it.
func (c *Config) Validate() error {
	if c.ID == "" || strings.ContainsAny(c.ID, "/\x00") || c.ID == "." || c.ID == ".." {
		return errors.New("monitor config: invalid container id " + strconv.Quote(c.ID))
	}
	for _, f := range []struct{ name, val string }{
		{"bundle", c.Bundle}, {"runtime_path", c.RuntimePath},
		{"pid_file", c.PidFile}, {"exit_file", c.ExitFile},
	} {
		if f.val == "" {
			return errors.New("monitor config: " + f.name + " is required")
		}
	}
	for _, f := range []struct{ name, val string }{
		{"bundle", c.Bundle}, {"runtime_path", c.RuntimePath}, {"runtime_root", c.RuntimeRoot},
		{"runtime_log_path", c.RuntimeLogPath}, {"exec_process", c.ExecProcess},
		{"pid_file", c.PidFile}, {"exit_file", c.ExitFile}, {"log_path", c.LogPath}, {"log_dir", c.LogDir},
		{"attach_socket", c.AttachSocket}, {"control_socket", c.ControlSocket},
		{"monitor_log_path", c.MonitorLogPath}, {"cgroup_path", c.CgroupPath},
		{"restore_image_path", c.RestoreImagePath}, {"restore_work_path", c.RestoreWorkPath},
		{"criu_path", c.CriuPath},
	} {
		if f.val != "" && !filepath.IsAbs(f.val) {
			return errors.New("monitor config: " + f.name + " " + strconv.Quote(f.val) + " is not an absolute path")
		}
	}
	if c.LogDir != "" && c.LogPath != "" {
		if rel, err := filepath.Rel(c.LogDir, c.LogPath); err != nil || !filepath.IsLocal(rel) {
			return errors.New("monitor config: log_path " + strconv.Quote(c.LogPath) + " is not beneath log_dir " + strconv.Quote(c.LogDir))
		}
	}
	if c.MaxLineSize < 0 {
		return errors.New("monitor config: max_line_size " + strconv.Itoa(c.MaxLineSize) + " is negative")
	}
	if c.MaxOutput < 0 {
		return errors.New("monitor config: max_output " + strconv.FormatInt(c.MaxOutput, 10) + " is negative")
	}
	if c.RestoreImagePath != "" {
		switch {
		case c.ExecProcess != "":
			return errors.New("monitor config: restore_image_path and exec_process exclude each other")
		case c.RestoreWorkPath == "":
			return errors.New("monitor config: restore_work_path is required with restore_image_path")
		case c.Terminal:
			// The runtime's restore cannot hand a new pty to a process
			// that had one: CRIU restores the old one's file, or fails.
			return errors.New("monitor config: a container with a terminal cannot be restored")
		}
	} else if c.RestoreWorkPath != "" || c.CriuPath != "" {
		return errors.New("monitor config: restore_work_path and criu_path need restore_image_path")
	}
	if c.StdinOnce && !c.Stdin {
		return errors.New("monitor config: stdin_once needs stdin")
	}
	if c.AttachFD != 0 && (c.AttachFD < 3 || c.ExecProcess == "") {
		return errors.New("monitor config: attach_fd " + strconv.Itoa(c.AttachFD) + " needs an exec session and an fd above 2")
	}
	return nil
}
