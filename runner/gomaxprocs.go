package runner

import (
	"os"

	"github.com/opencontainers/runc/libcontainer/configs"
)

// initOnOneP makes the process libcontainer starts ("berth-runner init",
// which becomes the container's init or exec'd process) run its Go runtime
// on one P, unless our caller chose GOMAXPROCS. Its work is sequential, and
// a second P only makes the scheduler start and wake more threads: about 5 ms
// of CPU per container on a 2-core VM. libcontainer hands our GOMAXPROCS to
// that process, so the setting goes through our environment.
//
// Hooks that run in this process and have no environment of their own get
// ours, so when there is one, nothing changes: a hook never sees a
// GOMAXPROCS it was not given. (This process keeps its own Ps: changing
// GOMAXPROCS after start-up stops the world and frees a P's caches, which
// costs about what it would save.)
func initOnOneP(c *configs.Config, init bool) {
	if _, set := os.LookupEnv("GOMAXPROCS"); set {
		return
	}
	if init && inheritsOurEnv(c.Hooks) {
		return
	}
	_ = os.Setenv("GOMAXPROCS", "1")
}

// inheritsOurEnv reports whether a hook that runs in the runtime's process
// (not in the container) has no environment set, and would get ours.
func inheritsOurEnv(hooks configs.Hooks) bool {
	for _, name := range []configs.HookName{configs.Prestart, configs.CreateRuntime, configs.Poststart, configs.Poststop} {
		for _, h := range hooks[name] {
			ch, ok := h.(configs.CommandHook)
			if !ok || len(ch.Env) == 0 {
				return true
			}
		}
	}
	return false
}
