// Command berth-pause is a pod's infra process: PID 1 of the pod's shared
// PID namespace. It reaps the zombies the pod's processes leave to it and
// exits 0 on SIGTERM or SIGINT. It does nothing else, so it links only
// the standard library and stays small.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		os.Stdout.WriteString("berth-pause\n")
		return
	}
	sigs := make(chan os.Signal, 8)
	// As PID 1 of a namespace, signals without a handler are ignored:
	// these handlers are what make SIGTERM and SIGINT stop it.
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		reap()
	}
}

// reap collects every exited child. Orphans of the pod are re-parented to
// PID 1 and would stay zombies without it. SIGCHLD signals coalesce, so
// one signal may stand for many exits: loop until none is left.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
