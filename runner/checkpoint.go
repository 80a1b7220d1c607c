package runner

// checkpoint and restore, as runc has them: libcontainer's CRIU support
// (Container.Checkpoint and Container.Restore, which drive `criu swrk`
// through github.com/checkpoint-restore/go-criu) behind runc's flags.

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// criuFlags are the flags checkpoint and restore share.
var criuFlags = []flagDef{
	flagS("image-path", "", "path for saving (checkpoint) or reading (restore) criu image files"),
	flagS("work-path", "", "path for saving work files and logs"),
	flagB("tcp-established", "allow open tcp connections"),
	flagB("ext-unix-sk", "allow external unix sockets"),
	flagB("shell-job", "allow shell jobs"),
	flagB("file-locks", "handle file locks, for safety"),
	flagS("manage-cgroups-mode", "", "cgroups mode: soft|full|strict|ignore (default: soft)"),
	flagL("empty-ns", "create a namespace, but don't restore its properties"),
	flagB("auto-dedup", "enable auto deduplication of memory images"),
	flagB("lazy-pages", "use userfaultfd to lazily restore memory pages"),
}

var checkpointCommand = &command{
	name:     "checkpoint",
	usage:    "checkpoint a running container",
	argsHelp: "<container-id>",
	flags: append(append([]flagDef{}, criuFlags...),
		flagS("parent-path", "", "path for previous criu image files in pre-dump"),
		flagB("leave-running", "leave the process running after checkpointing"),
		flagB("tcp-skip-in-flight", "skip in-flight tcp connections"),
		flagB("link-remap", "allow one to link unlinked files back when possible"),
		flagI("status-fd", "criu writes \\0 to this FD once lazy-pages is ready"),
		flagS("page-server", "", "ADDRESS:PORT of the page server"),
		flagB("pre-dump", "dump container's memory information only, leave the container running after this"),
	),
	minArgs: 1,
	maxArgs: 1,
	run: func(inv *invocation) error {
		c, err := loadContainer(inv)
		if err != nil {
			return err
		}
		status, err := c.Status()
		if err != nil {
			return err
		}
		if status == libcontainer.Created || status == libcontainer.Stopped {
			return fmt.Errorf("Container cannot be checkpointed in %s state", status)
		}
		opts, err := criuOptions(inv, true)
		if err != nil {
			return err
		}
		if err := useCriu(inv); err != nil {
			return err
		}
		if err := c.Checkpoint(opts); err != nil {
			return err
		}
		if !opts.LeaveRunning && !opts.PreDump {
			// CRIU stopped the processes; the container is gone, as
			// with runc.
			return c.Destroy()
		}
		return nil
	},
}

var restoreCommand = &command{
	name:     "restore",
	usage:    "restore a container from a previous checkpoint",
	argsHelp: "<container-id>",
	flags: append(append([]flagDef{}, criuFlags...),
		flagS("console-socket", "", "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal"),
		flagS("bundle,b", "", "path to the root of the bundle directory"),
		flagB("detach,d", "detach from the container's process"),
		flagS("pid-file", "", "specify the file to write the process id to"),
		flagB("no-subreaper", "disable the use of the subreaper used to reap reparented processes"),
		flagB("no-pivot", "do not use pivot root to jail process inside rootfs.  This should be used whenever the rootfs is on top of a ramdisk"),
		// Not runc's restore flag, but newContainer reads it as create does.
		flagB("no-new-keyring", "do not create a new session keyring for the container"),
		flagS("lsm-profile", "", "Specify an LSM profile to be used during restore in the form of TYPE:NAME."),
		flagS("lsm-mount-context", "", "Specify an LSM mount context to be used during restore."),
	),
	minArgs: 1,
	maxArgs: 1,
	run: func(inv *invocation) error {
		opts, err := criuOptions(inv, false)
		if err != nil {
			return err
		}
		if err := useCriu(inv); err != nil {
			return err
		}
		status, err := restoreContainer(inv, opts)
		if err != nil {
			return err
		}
		// The container's exit status, as runc's restore exits with.
		return exitCode(status)
	},
}

// restoreContainer is startContainer for a checkpoint: a new container
// from the bundle whose init is CRIU's restored process tree.
func restoreContainer(inv *invocation, opts *libcontainer.CriuOpts) (int, error) {
	container, spec, err := bundleContainer(inv)
	if err != nil {
		return -1, err
	}
	detach := inv.flags.Bool("detach")
	r := &launch{
		container:     container,
		action:        actRestore,
		init:          true,
		detach:        detach,
		shouldDestroy: true,
		subreaper:     !detach && !inv.flags.Bool("no-subreaper"),
		consoleSocket: inv.flags.String("console-socket"),
		pidFile:       inv.flags.String("pid-file"),
		criuOpts:      opts,
	}
	return r.run(spec.Process)
}

// criuOptions reads runc's CRIU flags. The image directory defaults to
// ./checkpoint, as runc's.
func criuOptions(inv *invocation, dump bool) (*libcontainer.CriuOpts, error) {
	f := inv.flags
	imagePath := f.String("image-path")
	if imagePath == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		imagePath = filepath.Join(wd, "checkpoint")
	}
	if err := os.MkdirAll(imagePath, 0o700); err != nil {
		return nil, err
	}
	opts := &libcontainer.CriuOpts{
		ImagesDirectory:         imagePath,
		WorkDirectory:           f.String("work-path"),
		TcpEstablished:          f.Bool("tcp-established"),
		ExternalUnixConnections: f.Bool("ext-unix-sk"),
		ShellJob:                f.Bool("shell-job"),
		FileLocks:               f.Bool("file-locks"),
		AutoDedup:               f.Bool("auto-dedup"),
		LazyPages:               f.Bool("lazy-pages"),
		ManageCgroupsMode:       f.String("manage-cgroups-mode"),
		StatusFd:                -1,
	}
	if dump {
		parent, err := parentPath(imagePath, f.String("parent-path"))
		if err != nil {
			return nil, err
		}
		opts.ParentImage = parent
		opts.LeaveRunning = f.Bool("leave-running")
		opts.TcpSkipInFlight = f.Bool("tcp-skip-in-flight")
		opts.LinkRemap = f.Bool("link-remap")
		opts.PreDump = f.Bool("pre-dump")
		if f.IsSet("status-fd") {
			opts.StatusFd = f.Int("status-fd")
		}
		if ps := f.String("page-server"); ps != "" {
			host, port, err := net.SplitHostPort(ps)
			if err != nil || host == "" || port == "" {
				return nil, errors.New("Use --page-server ADDRESS:PORT to specify page server")
			}
			n, err := strconv.ParseInt(port, 10, 32)
			if err != nil {
				return nil, errors.New("Invalid port number")
			}
			opts.PageServer = libcontainer.CriuPageServerInfo{Address: host, Port: int32(n)}
		}
	} else {
		opts.LsmProfile = f.String("lsm-profile")
		opts.LsmMountContext = f.String("lsm-mount-context")
	}
	// The runtime does not manage network devices: the network namespace
	// is always external (the pod's), never restored by CRIU.
	mask := uint32(unix.CLONE_NEWNET)
	for _, ns := range f.Slice("empty-ns") {
		if specs.LinuxNamespaceType(ns) != specs.NetworkNamespace {
			return nil, fmt.Errorf("namespace %q is not supported", ns)
		}
	}
	opts.EmptyNs = mask
	return opts, nil
}

// parentPath checks a pre-dump's parent, which must be a directory
// relative to the image directory.
func parentPath(imagePath, parent string) (string, error) {
	if parent == "" {
		return "", nil
	}
	if filepath.IsAbs(parent) {
		return "", errors.New("--parent-path must be relative")
	}
	fi, err := os.Stat(filepath.Join(imagePath, parent))
	if err == nil && !fi.IsDir() {
		err = &os.PathError{Op: "stat", Path: filepath.Join(imagePath, parent), Err: unix.ENOTDIR}
	}
	if err != nil {
		return "", fmt.Errorf("invalid --parent-path: %w", err)
	}
	return parent, nil
}

// useCriu makes the global --criu the criu libcontainer runs. libcontainer
// (since runc 1.2) runs "criu" from PATH and has no option for another
// path, so a --criu naming a file puts its directory first in PATH; the
// file must then be called criu. Without --criu, criu comes from PATH, as
// with runc.
func useCriu(inv *invocation) error {
	p := inv.global.String("criu")
	if !inv.global.IsSet("criu") || p == "criu" {
		return nil
	}
	if filepath.Base(p) != "criu" {
		return fmt.Errorf("--criu %s: the binary must be named criu (libcontainer runs criu from PATH)", p)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return err
	}
	if st, err := os.Stat(abs); err != nil {
		return fmt.Errorf("--criu: %w", err)
	} else if st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("--criu %s: not an executable file", abs)
	}
	return os.Setenv("PATH", filepath.Dir(abs)+string(os.PathListSeparator)+os.Getenv("PATH"))
}
