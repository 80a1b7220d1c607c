// Command berth-monitor supervises one container for berthd: it runs the
// OCI runtime's create, owns the container's stdio, writes its CRI log,
// serves attach, and records its exit. berthd starts it through
// monitor.Start, which passes the configuration as JSON on stdin and reads
// the outcome on the fd named by $BERTH_MONITOR_SYNC_FD. See package monitor.
//
// By hand (debugging): berth-monitor < config.json; the outcome is printed
// on stdout.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"syscall"

	"github.com/berth-cri/berth/monitor"
)

func main() {
	// A monitor per container on a 110-pod node: collect early and keep
	// the heap small rather than fast; the monitor moves little data.
	debug.SetGCPercent(25)
	// One P: the monitor mostly sleeps, and each P costs its own caches.
	runtime.GOMAXPROCS(1)

	id := flag.String("id", "", "container id (informational: it names the process in ps)")
	flag.Parse()

	diag := log.New(os.Stderr, fmt.Sprintf("berth-monitor[%d] %s: ", os.Getpid(), *id), log.LstdFlags|log.Lmicroseconds|log.LUTC)
	conf, err := io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
	if err != nil {
		diag.Fatalf("read config: %v", err)
	}
	if len(conf) == 0 {
		// Spawned ahead of its container (monitor.Spawn), which berthd
		// then did not make: nothing to do.
		os.Exit(0)
	}
	var cfg monitor.Config
	if err := json.Unmarshal(conf, &cfg); err != nil {
		diag.Fatalf("parse config: %v", err)
	}
	if *id != "" && *id != cfg.ID {
		diag.Fatalf("--id %q does not match the config's id %q", *id, cfg.ID)
	}
	// The config pipe is done; keep fd 0 pointing at nothing.
	if devnull, err := os.Open("/dev/null"); err == nil {
		_ = syscall.Dup3(int(devnull.Fd()), 0, 0)
		devnull.Close()
	}

	// monitor.Start names the sync fd in the environment; probing fd 3
	// instead could find the Go runtime's own epoll fd.
	var syncOut io.WriteCloser = os.Stdout
	if v := os.Getenv(monitor.SyncFDEnv); v != "" {
		fd, err := strconv.Atoi(v)
		if err != nil || fd < 3 {
			diag.Fatalf("bad %s=%q", monitor.SyncFDEnv, v)
		}
		syncOut = os.NewFile(uintptr(fd), "sync")
		os.Unsetenv(monitor.SyncFDEnv) // not for the runtime
	}
	os.Exit(monitor.Run(cfg, syncOut, diag))
}
