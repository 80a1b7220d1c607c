// Command vm is Berth's VM test lane: a Debian 12 virtual machine with
// systemd as init and cgroup v2 only, the kind of node Berth runs on,
// booted under QEMU (KVM when /dev/kvm exists, TCG otherwise) to run
// commands and test suites built on the host. Run it from the repository's
// root, as root.
//
// Usage:
//
//	go run ./test/vm image [-cache build/cache]
//	    Build the VM image if the cache has none for the current recipe
//	    (test/vm/image.sh and test/vm/guest/), print its directory.
//
//	go run ./test/vm run [-share DIR] [-env K=V]... [-timeout 30m] [-- ] CMD [ARG...]
//	    Boot the VM (building the image first if needed), run CMD inside
//	    as root with bash, print its output as it comes, power off, and
//	    exit with CMD's exit code: 124 when the timeout killed the VM, 125
//	    when the VM never reported one (boot failure: the console's tail
//	    is printed). DIR is shared read-write over 9p at /mnt/host and CMD
//	    starts there. Every run starts from the same clean disk (QEMU
//	    snapshot=on); the VM has no network device. Nothing stays running
//	    on the host: QEMU is killed on timeout, on ^C and when this
//	    process dies. Other flags: -smp 2, -mem 4096 (MiB), -v (console to
//	    stderr), -console FILE (keep the console log).
//	    Example: go run ./test/vm run -share . -- bin/berthd --version
//
//	go run ./test/vm lane [flags]
//	    `make vm-test`: builds what runs inside on the host (berthd and
//	    its helpers from -bindir, the critest harness with its cached
//	    tools, the e2e test binary), boots the VM once and runs the
//	    critest suite and a part of the e2e suite for each cgroup driver
//	    and runtime of the matrix, then prints N passed, N failed, N
//	    skipped summed over everything. See lane.go for its flags.
//
// Binaries for the VM must be static (make build's are): the image has no
// Go toolchain and no network. Inside, /mnt/host is 9p: reading is fine,
// writing is slow, so keep results small or print them.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var code int
	switch os.Args[1] {
	case "image":
		code = imageMain(os.Args[2:])
	case "run":
		code = runMain(os.Args[2:])
	case "lane":
		code = laneMain(os.Args[2:])
	default:
		usage()
	}
	os.Exit(code)
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: go run ./test/vm image|run|lane [flags] (see test/vm/main.go)")
	os.Exit(2)
}
