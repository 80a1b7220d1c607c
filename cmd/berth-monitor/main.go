// Command berth-monitor supervises one container for berthd: it runs the
// OCI runtime's create, owns the container's stdio, writes its CRI log,
// serves attach, and records its exit. berthd starts it through
// monitorclient.Start, which passes the configuration on stdin (in
// monitor.Config's encoding) and reads the outcome on the fd named by
// $BERTH_MONITOR_SYNC_FD. See packages monitor (this process) and
// monitorclient (berthd's side).
//
// By hand (debugging): berth-monitor < config; the outcome is printed on
// stdout.
//
// It links only the standard library's small packages and x/sys (no fmt,
// log, flag, net or encoding/json): one runs per container, and every
// package's code is resident in each (see the README's monitor memory
// section).
package main

import (
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"github.com/berth-cri/berth/monitor"
)

func main() {
	// A monitor per container on a 110-pod node: collect early and keep
	// the heap small rather than fast; the monitor moves little data.
	debug.SetGCPercent(25)
	// One P: the monitor mostly sleeps, and each P costs its own caches.
	// (monitorclient.Start also sets GOMAXPROCS=1 in the environment, which
	// takes effect before the runtime starts; this covers a monitor run
	// by hand.)
	runtime.GOMAXPROCS(1)

	id, err := parseArgs(os.Args[1:])
	diag := monitor.NewDiag(os.Stderr, id)
	if err != "" {
		diag.Fatal(err)
	}
	conf, rerr := io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
	if rerr != nil {
		diag.Fatal("read config: ", rerr.Error())
	}
	if len(conf) == 0 {
		// Spawned ahead of its container (monitorclient.Spawn), which berthd
		// then did not make: nothing to do.
		os.Exit(0)
	}
	cfg, cerr := monitor.DecodeConfig(conf)
	if cerr != nil {
		diag.Fatal("parse config: ", cerr.Error())
	}
	if id != "" && id != cfg.ID {
		diag.Fatal("--id ", strconv.Quote(id), " does not match the config's id ", strconv.Quote(cfg.ID))
	}
	// The config pipe is done; keep fd 0 pointing at nothing.
	if devnull, err := os.Open("/dev/null"); err == nil {
		_ = syscall.Dup3(int(devnull.Fd()), 0, 0)
		devnull.Close()
	}

	// monitorclient.Start names the sync fd in the environment; probing fd 3
	// instead could find the Go runtime's own epoll fd.
	var syncOut io.WriteCloser = os.Stdout
	if v := os.Getenv(monitor.SyncFDEnv); v != "" {
		fd, err := strconv.Atoi(v)
		if err != nil || fd < 3 {
			diag.Fatal("bad ", monitor.SyncFDEnv, "=", strconv.Quote(v))
		}
		syncOut = os.NewFile(uintptr(fd), "sync")
		os.Unsetenv(monitor.SyncFDEnv) // not for the runtime
	}
	os.Exit(monitor.Run(cfg, syncOut, diag))
}

// parseArgs reads the one flag, --id ID (informational: it names the
// container in ps and in the diagnostics). It returns an error message
// for anything else.
func parseArgs(args []string) (id, errMsg string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "id" {
			return "", "usage: berth-monitor [--id ID] < config: unexpected argument " + strconv.Quote(a)
		}
		if !hasVal {
			if i+1 >= len(args) {
				return "", "usage: berth-monitor [--id ID] < config: --id needs a value"
			}
			i++
			val = args[i]
		}
		id = val
	}
	return id, ""
}
