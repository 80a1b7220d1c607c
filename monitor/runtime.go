package monitor

// How the monitor calls the OCI runtime (a runc-compatible CLI) and reads
// its account of a failure.

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// GlobalArgs are the runtime's global flags for cfg, before the subcommand.
func GlobalArgs(cfg *Config) []string {
	args := append([]string(nil), cfg.RuntimeArgs...)
	if cfg.RuntimeRoot != "" {
		args = append(args, "--root", cfg.RuntimeRoot)
	}
	return args
}

// RuntimeLogPath is the runtime's --log file for cfg. Its last error is the
// best account of a failed create; the monitor's caller reads it (JSON
// lines, which the monitor does not parse: see wire.go).
func RuntimeLogPath(cfg *Config) string {
	if cfg.RuntimeLogPath != "" {
		return cfg.RuntimeLogPath
	}
	return filepath.Join(cfg.Bundle, "runtime.log")
}

// createArgs is the full argument list (without argv[0]) that makes the
// runtime create the container, or start the exec session, for cfg.
func createArgs(cfg *Config, consoleSocket string) []string {
	args := append(GlobalArgs(cfg), "--log", RuntimeLogPath(cfg), "--log-format", "json")
	switch {
	case cfg.ExecProcess != "":
		args = append(args, "exec", "--detach", "--process", cfg.ExecProcess)
	case cfg.RestoreImagePath != "":
		args = append(args, "restore", "--detach", "--bundle", cfg.Bundle,
			"--image-path", cfg.RestoreImagePath, "--work-path", cfg.RestoreWorkPath)
		args = append(args, cfg.CreateArgs...)
	default:
		args = append(args, "create", "--bundle", cfg.Bundle)
		args = append(args, cfg.CreateArgs...)
	}
	args = append(args, "--pid-file", cfg.PidFile)
	if consoleSocket != "" {
		args = append(args, "--console-socket", consoleSocket)
	}
	return append(args, cfg.ID)
}

// runtimeEnv is RuntimeEnv for cfg: a restore's CRIU directory goes first
// in PATH, since runc runs "criu" from PATH and has no flag for another.
func runtimeEnv(cfg *Config, environ []string) []string {
	env := RuntimeEnv(environ)
	if cfg.CriuPath == "" {
		return env
	}
	dir := filepath.Dir(cfg.CriuPath)
	for i, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			env[i] = "PATH=" + dir + ":" + v
			return env
		}
	}
	return append(env, "PATH="+dir+":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
}

// RuntimeEnv is the environment the monitor gives the OCI runtime: its
// own, with the caller's GOMAXPROCS (or none) instead of the monitor's.
func RuntimeEnv(environ []string) []string {
	env := make([]string, 0, len(environ))
	var caller string
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, CallerGOMAXPROCSEnv+"="); ok {
			caller = "GOMAXPROCS=" + v
			continue
		}
		if !strings.HasPrefix(kv, "GOMAXPROCS=") {
			env = append(env, kv)
		}
	}
	if caller != "" {
		env = append(env, caller)
	}
	return env
}

// runtimeError is what the monitor knows of a failed create: what the
// runtime wrote to stderr, else how it ended. (Its --log, which usually
// says more, is read by the caller: see RuntimeLogPath.)
func (m *supervisor) runtimeError(pid int, ws syscall.WaitStatus) string {
	m.captureMu.Lock()
	text := strings.TrimSpace(string(m.capture))
	m.captureMu.Unlock()
	if text != "" {
		return text
	}
	if ws.Signaled() {
		return "runtime (pid " + strconv.Itoa(pid) + ") killed by signal " + strconv.Itoa(int(ws.Signal()))
	}
	return "runtime exited with status " + strconv.Itoa(ws.ExitStatus()) + " and no message"
}

func readPidFile(path string) (int, error) {
	b, err := readFile(path)
	if err != nil {
		return 0, wrap(err, "read container pid")
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, errors.New("bad container pid " + strconv.Quote(string(b)) + " in " + path)
	}
	return pid, nil
}

// readFile is os.ReadFile without its Stat (os.FileInfo's time.Time would
// link time's formatting and zone loading); the files read are small.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
