// berth-runner is Berth's bundled OCI runtime, with a runc-compatible
// command line. See package runner.

// Every invocation is a short-lived process (or a container's init about to
// exec), so the Go runtime's start-up is a large part of its cost: no
// goroutine that keeps GOMAXPROCS up to date with the CPU quota.
//
//go:debug updatemaxprocs=0
package main

import (
	"os"

	"github.com/berth-cri/berth/runner"
	// nsenter's cgo constructor runs before the Go runtime in "berth-runner
	// init" (the container's init, re-executed from a sealed copy of this
	// binary): it joins or creates the namespaces, with their id mappings,
	// while the process is still single-threaded, which Go code cannot do.
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
)

// version is set by the Makefile (-X main.version=...).
var version = "dev"

func init() {
	if runner.IsInit() {
		runner.Init() // never returns
	}
}

func main() {
	app := &runner.App{Version: version}
	os.Exit(app.Main(os.Args))
}
