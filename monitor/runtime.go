package monitor

// How the monitor calls the OCI runtime (a runc-compatible CLI) and reads
// its account of a failure.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// globalArgs are the runtime's global flags for cfg, before the subcommand.
func globalArgs(cfg *Config) []string {
	args := append([]string(nil), cfg.RuntimeArgs...)
	if cfg.RuntimeRoot != "" {
		args = append(args, "--root", cfg.RuntimeRoot)
	}
	return args
}

// runtimeLogPath is the runtime's --log file for cfg.
func runtimeLogPath(cfg *Config) string {
	if cfg.RuntimeLogPath != "" {
		return cfg.RuntimeLogPath
	}
	return filepath.Join(cfg.Bundle, "runtime.log")
}

// createArgs is the full argument list (without argv[0]) that makes the
// runtime create the container, or start the exec session, for cfg.
func createArgs(cfg *Config, consoleSocket string) []string {
	args := append(globalArgs(cfg), "--log", runtimeLogPath(cfg), "--log-format", "json")
	if cfg.ExecProcess != "" {
		args = append(args, "exec", "--detach", "--process", cfg.ExecProcess)
	} else {
		args = append(args, "create", "--bundle", cfg.Bundle)
		args = append(args, cfg.CreateArgs...)
	}
	args = append(args, "--pid-file", cfg.PidFile)
	if consoleSocket != "" {
		args = append(args, "--console-socket", consoleSocket)
	}
	return append(args, cfg.ID)
}

// runtimeError is the runtime's own words for a failed create: the last
// error in its --log (runc's JSON lines), else what it wrote to stderr.
func (m *monitor) runtimeError(rtLog string, offset int64, pid int, ws syscall.WaitStatus) string {
	if msg := lastLoggedError(rtLog, offset); msg != "" {
		return msg
	}
	m.captureMu.Lock()
	text := strings.TrimSpace(string(m.capture))
	m.captureMu.Unlock()
	if text != "" {
		return text
	}
	if ws.Signaled() {
		return fmt.Sprintf("runtime (pid %d) killed by signal %d", pid, ws.Signal())
	}
	return fmt.Sprintf("runtime exited with status %d and no message", ws.ExitStatus())
}

// lastLoggedError returns the msg of the last error or fatal line written
// to the runtime's JSON log after offset.
func lastLoggedError(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	var last string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		var l struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && (l.Level == "error" || l.Level == "fatal") && l.Msg != "" {
			last = l.Msg
		}
	}
	return last
}

func readPidFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read container pid: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("bad container pid %q in %s", b, path)
	}
	return pid, nil
}
