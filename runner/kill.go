package runner

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"
)

var killCommand = &command{
	name:     "kill",
	usage:    "kill sends the specified signal (default: SIGTERM) to the container's init process",
	argsHelp: "<container-id> [signal]",
	flags: []flagDef{
		flagB("all,a", "send the specified signal to all processes inside the container"),
	},
	minArgs: 1,
	maxArgs: 2,
	run: func(inv *invocation) error {
		c, err := loadContainer(inv)
		if err != nil {
			return err
		}
		sigstr := "SIGTERM"
		if len(inv.args) > 1 && inv.args[1] != "" {
			sigstr = inv.args[1]
		}
		sig, err := parseSignal(sigstr)
		if err != nil {
			return err
		}
		all := inv.flags.Bool("all")
		if all && !c.Config().Namespaces.IsPrivate(configs.NEWPID) && sig != unix.SIGKILL {
			// A shared PID namespace: the init's death does not take the
			// others with it, so --all reaches every process of the cgroup
			// (libcontainer already does so for SIGKILL).
			return signalAll(c, sig)
		}
		err = c.Signal(sig)
		if errors.Is(err, libcontainer.ErrNotRunning) && all {
			err = nil
		}
		return err
	},
}

func signalAll(c *libcontainer.Container, sig unix.Signal) error {
	status, err := c.Status()
	if err != nil {
		return err
	}
	if status == libcontainer.Stopped {
		return nil
	}
	pids, err := c.Processes()
	if err != nil {
		return err
	}
	for _, pid := range pids {
		if err := unix.Kill(pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("unable to signal process %d: %w", pid, err)
		}
	}
	return nil
}

// parseSignal accepts a number, "KILL" or "SIGKILL".
func parseSignal(raw string) (unix.Signal, error) {
	if n, err := strconv.Atoi(raw); err == nil {
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(raw)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	sig := unix.SignalNum(name)
	if sig == 0 {
		return -1, fmt.Errorf("unknown signal %q", raw)
	}
	return sig, nil
}
