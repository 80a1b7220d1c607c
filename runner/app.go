// Package runner is the library of berth-runner, Berth's bundled OCI runtime.
//
// The security-sensitive machinery (namespaces through the nsenter cgo
// package, rootfs and mounts, devices, capabilities, seccomp, AppArmor and
// SELinux labels, the sealed /proc/self/exe against CVE-2019-5736, cgroup
// managers v1 and v2 through github.com/opencontainers/cgroups, hooks, the
// exec fifo) is runc's libcontainer, a well-reviewed library, used as is.
// This package is the runtime around it: the runc-compatible command line,
// the state directory, process and terminal wiring, and the choices that make
// a lifecycle cheaper than runc's.
package runner

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
)

// Name is how the runtime calls itself in messages and the features JSON.
const Name = "berth-runner"

const defaultRoot = "/run/berth-runner"

// command is one subcommand; args bounds are checked before run.
type command struct {
	name     string
	usage    string
	argsHelp string
	flags    []flagDef
	inOrder  bool // do not look for flags after the first argument
	minArgs  int
	maxArgs  int // -1: no maximum
	run      func(*invocation) error
}

// invocation is what a command sees: global and own flags, positional args.
type invocation struct {
	app     *App
	global  *flagSet
	flags   *flagSet
	args    []string
	command *command
}

// Root is the absolute state directory (--root).
func (c *invocation) Root() string { return c.global.String("root") }

// App is one invocation of the runtime.
type App struct {
	Version string
	Stdout  io.Writer
	Stderr  io.Writer
}

// exitCode makes Main exit with a code without printing anything.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// codedError makes Main print err and exit with code (runc's fatalWithCode).
type codedError struct {
	code int
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

var globalFlags = []flagDef{
	flagB("debug", "enable debug logging"),
	flagS("log", "", "set the log file to write berth-runner logs to (default is '/dev/stderr')"),
	flagS("log-format", "text", "set the log format ('text' (default), or 'json')"),
	flagS("root", defaultRoot, "root directory for storage of container state (this should be located in tmpfs)"),
	flagB("systemd-cgroup", "enable systemd cgroup support, expects cgroupsPath to be of form \"slice:prefix:name\" for e.g. \"system.slice:runc:434234\""),
	flagS("rootless", "auto", "ignore cgroup permission errors ('true', 'false', or 'auto')"),
	flagS("criu", "criu", "path to the criu binary used for checkpoint and restore (default: criu from PATH)"),
	flagB("version,v", "print the version"),
}

func commands() []*command {
	return []*command{
		checkpointCommand, createCommand, deleteCommand, execCommand, featuresCommand,
		killCommand, listCommand, pauseCommand, psCommand, restoreCommand, resumeCommand,
		runCommand, specCommand, startCommand, stateCommand, updateCommand,
	}
}

// Main runs the command line args (args[0] is the program) and returns the
// process exit code.
func (a *App) Main(args []string) int {
	if a.Stdout == nil {
		a.Stdout = os.Stdout
	}
	if a.Stderr == nil {
		a.Stderr = os.Stderr
	}
	global := newFlagSet(true, globalFlags...)
	if err := global.parse(args[1:]); err != nil {
		if errors.Is(err, errHelp) {
			a.printHelp()
			return 0
		}
		fmt.Fprintf(a.Stderr, "Incorrect Usage. %v\n\n", err)
		return a.fatal(err, 1)
	}
	if global.Bool("version") {
		a.printVersion()
		return 0
	}
	if len(global.args) == 0 || global.args[0] == "help" || global.args[0] == "h" {
		if len(global.args) > 1 {
			if cmd := lookup(global.args[1]); cmd != nil {
				a.printCommandHelp(cmd)
				return 0
			}
		}
		a.printHelp()
		return 0
	}
	if err := configureLogging(global); err != nil {
		return a.fatal(err, 1)
	}
	if err := reviseRoot(global); err != nil {
		return a.fatal(err, 1)
	}
	cmd := lookup(global.args[0])
	if cmd == nil {
		return a.fatal(fmt.Errorf("No help topic for '%s'", global.args[0]), 3)
	}
	fs := newFlagSet(cmd.inOrder, cmd.flags...)
	if err := fs.parse(global.args[1:]); err != nil {
		if errors.Is(err, errHelp) {
			a.printCommandHelp(cmd)
			return 0
		}
		fmt.Fprintf(a.Stderr, "Incorrect Usage: %v\n\n", err)
		return a.fatal(err, 1)
	}
	inv := &invocation{app: a, global: global, flags: fs, args: fs.args, command: cmd}
	if err := checkArgs(inv); err != nil {
		fmt.Fprintf(a.Stdout, "Incorrect Usage.\n\n")
		a.printCommandHelp(cmd)
		return a.fatal(err, 1)
	}
	err := cmd.run(inv)
	var code exitCode
	var coded *codedError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &code):
		return int(code)
	case errors.As(err, &coded):
		return a.fatal(coded.err, coded.code)
	default:
		return a.fatal(err, 1)
	}
}

func lookup(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	return nil
}

func checkArgs(inv *invocation) error {
	c, n := inv.command, len(inv.args)
	prog := filepath.Base(os.Args[0])
	switch {
	case c.minArgs == c.maxArgs && n != c.minArgs:
		return fmt.Errorf("%s: %q requires exactly %d argument(s)", prog, c.name, c.minArgs)
	case n < c.minArgs:
		return fmt.Errorf("%s: %q requires a minimum of %d argument(s)", prog, c.name, c.minArgs)
	case c.maxArgs >= 0 && n > c.maxArgs:
		return fmt.Errorf("%s: %q requires a maximum of %d argument(s)", prog, c.name, c.maxArgs)
	}
	return nil
}

// reviseRoot makes --root absolute and refuses "/", as runc does.
func reviseRoot(global *flagSet) error {
	if !global.IsSet("root") {
		return nil
	}
	root, err := filepath.Abs(global.String("root"))
	if err != nil {
		return err
	}
	if root == "/" {
		return errors.New("Option --root argument should not be set to /")
	}
	global.Set("root", root)
	return nil
}

func (a *App) printVersion() {
	fmt.Fprintf(a.Stdout, "%s version %s\nspec: %s\ngo: %s\n", Name, a.Version, specs.Version, runtime.Version())
	if v := seccompVersion(); v != "" {
		fmt.Fprintf(a.Stdout, "libseccomp: %s\n", v)
	}
}

func (a *App) printHelp() {
	fmt.Fprintf(a.Stdout, "NAME:\n   %s - the OCI runtime bundled with Berth (runc-compatible command line)\n\n", Name)
	fmt.Fprintf(a.Stdout, "USAGE:\n   %s [global options] command [command options] [arguments...]\n\nVERSION:\n   %s\n\nCOMMANDS:\n", Name, a.Version)
	cmds := commands()
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].name < cmds[j].name })
	for _, c := range cmds {
		fmt.Fprintf(a.Stdout, "   %-10s %s\n", c.name, c.usage)
	}
	fmt.Fprintf(a.Stdout, "\nGLOBAL OPTIONS:\n%s", newFlagSet(true, globalFlags...).usage())
}

func (a *App) printCommandHelp(c *command) {
	fmt.Fprintf(a.Stdout, "NAME:\n   %s %s - %s\n\nUSAGE:\n   %s %s [command options] %s\n", Name, c.name, c.usage, Name, c.name, strings.TrimSpace(c.argsHelp))
	if len(c.flags) > 0 {
		fmt.Fprintf(a.Stdout, "\nOPTIONS:\n%s", newFlagSet(false, c.flags...).usage())
	}
}

// fatal reports err as runc does: through the logger (stderr, or the --log
// file in text or JSON, where conmon and CRI-O read the last error), and also
// plainly on stderr when the log goes elsewhere. It returns code.
func (a *App) fatal(err error, code int) int {
	logrus.Error(err)
	if !logsToStderr() {
		fmt.Fprintln(a.Stderr, err)
	}
	return code
}
