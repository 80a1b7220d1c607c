package runner

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runtime-spec/specs-go"
)

var createFlags = []flagDef{
	flagS("bundle,b", "", "path to the root of the bundle directory, defaults to the current directory"),
	flagS("console-socket", "", "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal"),
	flagS("pidfd-socket", "", "path to an AF_UNIX socket which will receive a file descriptor referencing the init process"),
	flagS("pid-file", "", "specify the file to write the process id to"),
	flagB("no-pivot", "do not use pivot root to jail process inside rootfs.  This should be used whenever the rootfs is on top of a ramdisk"),
	flagB("no-new-keyring", "do not create a new session keyring for the container.  This will cause the container to inherit the calling processes session key"),
	flagI("preserve-fds", "Pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)"),
}

var createCommand = &command{
	name:     "create",
	usage:    "create a container",
	argsHelp: "<container-id>",
	flags:    createFlags,
	minArgs:  1,
	maxArgs:  1,
	run: func(inv *invocation) error {
		if _, err := startContainer(inv, actCreate); err != nil {
			return fmt.Errorf("%s create failed: %w", Name, err)
		}
		return nil
	},
}

var runCommand = &command{
	name:     "run",
	usage:    "create and run a container",
	argsHelp: "<container-id>",
	flags: append(append([]flagDef{}, createFlags...),
		flagB("detach,d", "detach from the container's process"),
		flagB("keep", "do not delete the container after it exits"),
		flagB("no-subreaper", "disable the use of the subreaper used to reap reparented processes"),
	),
	minArgs: 1,
	maxArgs: 1,
	run: func(inv *invocation) error {
		status, err := startContainer(inv, actRun)
		if err != nil {
			return fmt.Errorf("%s run failed: %w", Name, err)
		}
		return exitCode(status)
	},
}

// startContainer is create and run: load the bundle, make the container,
// start its init.
func startContainer(inv *invocation, act action) (int, error) {
	container, spec, err := bundleContainer(inv)
	if err != nil {
		return -1, err
	}
	r := &launch{
		container:     container,
		action:        act,
		init:          true,
		detach:        act == actCreate || inv.flags.Bool("detach"),
		shouldDestroy: act == actCreate || !inv.flags.Bool("keep"),
		consoleSocket: inv.flags.String("console-socket"),
		pidfdSocket:   inv.flags.String("pidfd-socket"),
		pidFile:       inv.flags.String("pid-file"),
		preserveFDs:   inv.flags.Int("preserve-fds"),
		listenFDs:     listenFDs(),
	}
	if act == actRun {
		r.subreaper = !inv.flags.Bool("no-subreaper")
	}
	return r.run(spec.Process)
}

// bundleContainer loads the bundle (--bundle, else the working directory)
// and makes the container it describes, for create, run and restore.
func bundleContainer(inv *invocation) (*libcontainer.Container, *specs.Spec, error) {
	if p := inv.flags.String("pid-file"); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, nil, err
		}
		inv.flags.Set("pid-file", abs)
	}
	if bundle := inv.flags.String("bundle"); bundle != "" {
		// libcontainer resolves a relative rootfs against the working
		// directory, and records the bundle from it, as runc does.
		if err := os.Chdir(bundle); err != nil {
			return nil, nil, err
		}
	}
	spec, err := loadSpec(specConfig)
	if err != nil {
		return nil, nil, err
	}
	id := inv.args[0]
	if id == "" {
		return nil, nil, errEmptyID
	}
	container, err := newContainer(inv, id, spec)
	if err != nil {
		return nil, nil, err
	}
	return container, spec, nil
}
