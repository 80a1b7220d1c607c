package oci

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// procIdentity names one process for its whole life: its pid and its
// start time (clock ticks after boot, /proc/<pid>/stat field 22). A pid
// is reused once its process is reaped; the pair is not.
type procIdentity struct {
	pid   int
	start uint64
}

// procStartTime reads a process's start time.
func procStartTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces
	// and parentheses itself: count fields after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	fields := strings.Fields(string(b[i+1:]))
	const startField = 22 - 3 // fields 1 and 2 are before ')'
	if len(fields) <= startField {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	return strconv.ParseUint(fields[startField], 10, 64)
}

// procRunsBinary reports whether pid runs the executable at path, by
// /proc/<pid>/exe, which a process cannot fake (unlike its command line).
// A binary replaced since (an upgrade) still counts.
func procRunsBinary(pid int, path string) bool {
	exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil {
		return false
	}
	exe = strings.TrimSuffix(exe, " (deleted)")
	if exe == path {
		return true
	}
	resolved, err := filepath.EvalSymlinks(path)
	return err == nil && exe == resolved
}

// isMonitor reports whether pid is a berth-monitor (the binary at
// monitorPath) of container id, started at start (0: not known, from a
// record older than start times).
func isMonitor(pid int, start uint64, monitorPath, id string) bool {
	if pid <= 0 || !procRunsBinary(pid, monitorPath) {
		return false
	}
	if start != 0 {
		got, err := procStartTime(pid)
		return err == nil && got == start
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return err == nil && bytes.Contains(cmdline, []byte("--id\x00"+id+"\x00"))
}
