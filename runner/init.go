package runner

import (
	"os"

	// Registers the device-cgroup manager with opencontainers/cgroups, so
	// spec device rules are enforced (v1 devices.allow/deny, v2 eBPF).
	_ "github.com/opencontainers/cgroups/devices"
	"github.com/opencontainers/runc/libcontainer"
)

// IsInit reports whether this process is a container's init or exec'd
// process being set up (libcontainer re-executes the runtime as "init").
func IsInit() bool { return len(os.Args) > 1 && os.Args[1] == "init" }

// Init finishes setting up the container process after nsenter and execs
// the user's program. It does not return. The binary must import
// github.com/opencontainers/runc/libcontainer/nsenter.
func Init() { libcontainer.Init() }
