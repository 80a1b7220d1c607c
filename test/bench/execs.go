package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"
)

// execLine matches strace -f's execve lines: the call (complete or
// "<unfinished ...>") names the program; the line ending "= 0" (the call
// itself or its "<... execve resumed>") says it succeeded.
var execLine = regexp.MustCompile(`^(\d+)\s+(?:execve\("([^"]*)"|<\.\.\. execve resumed>)`)

// traceExecs counts the programs the daemon and everything it starts
// exec while one pod lives its whole life (berthctl bench -pods 1: pod,
// container, one ExecSync, teardown), by strace -f attached to the daemon.
func traceExecs(o options, r *runtime, image string) (map[string]int, error) {
	out := filepath.Join(r.dir, "execs.strace")
	st := exec.Command("strace", "-f", "-qq", "-e", "trace=execve", "-s", "256", "-o", out, "-p", fmt.Sprint(r.pid()))
	st.Stderr = os.Stderr
	if err := st.Start(); err != nil {
		return nil, fmt.Errorf("strace: %w", err)
	}
	time.Sleep(time.Second) // attached to every thread before the pod starts
	bench := exec.Command(filepath.Join(o.bindir, "berthctl"), "-endpoint", "unix://"+r.socket,
		"bench", "-pods", "1", "-parallel", "1", "-image", image, "-pid", o.pid)
	berr := bench.Run()
	time.Sleep(time.Second) // the last children exit
	st.Process.Signal(syscall.SIGINT)
	st.Wait()
	if berr != nil {
		return nil, fmt.Errorf("%s: one traced pod: %w", r.name, berr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	return countExecs(strings.Split(string(b), "\n")), nil
}

func formatExecs(c map[string]int) string {
	total := 0
	var names []string
	for k, v := range c {
		total += v
		names = append(names, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(names)
	return fmt.Sprintf("%d (%s)", total, strings.Join(names, ", "))
}

// progName is a program's base name; a re-exec through /proc (of the
// process's own binary, or of a file descriptor) keeps its whole path.
func progName(path string) string {
	if strings.HasPrefix(path, "/proc/") {
		return path
	}
	return filepath.Base(path)
}
