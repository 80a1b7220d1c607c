package runner

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/utils"
	"github.com/opencontainers/runtime-spec/specs-go"
)

var execCommand = &command{
	name:     "exec",
	usage:    "execute new process inside the container",
	argsHelp: "<container-id> <command> [command options]  || -p process.json <container-id>",
	flags: []flagDef{
		flagS("console-socket", "", "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal"),
		flagS("pidfd-socket", "", "path to an AF_UNIX socket which will receive a file descriptor referencing the exec process"),
		flagS("cwd", "", "current working directory in the container"),
		flagL("env,e", "set environment variables"),
		flagB("tty,t", "allocate a pseudo-TTY"),
		flagS("user,u", "", "UID (format: <uid>[:<gid>])"),
		flagL("additional-gids,g", "additional gids"),
		flagS("process,p", "", "path to the process.json"),
		flagB("detach,d", "detach from the container's process"),
		flagS("pid-file", "", "specify the file to write the process id to"),
		flagS("process-label", "", "set the asm process label for the process commonly used with selinux"),
		flagS("apparmor", "", "set the apparmor profile for the process"),
		flagB("no-new-privs", "set the no new privileges value for the process"),
		flagL("cap,c", "add a capability to the bounding set for the process"),
		flagI("preserve-fds", "Pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)"),
		flagL("cgroup", "run the process in an (existing) sub-cgroup(s). Format is [<controller>:]<cgroup>."),
		flagB("ignore-paused", "allow exec in a paused container"),
	},
	inOrder: true,
	minArgs: 1,
	maxArgs: -1,
	run: func(inv *invocation) error {
		if p := inv.flags.String("pid-file"); p != "" {
			abs, err := filepath.Abs(p)
			if err != nil {
				return err
			}
			inv.flags.Set("pid-file", abs)
		}
		status, err := execProcess(inv)
		if err != nil {
			return &codedError{code: 255, err: fmt.Errorf("exec failed: %w", err)}
		}
		return exitCode(status)
	},
}

func execProcess(inv *invocation) (int, error) {
	c, err := loadContainer(inv)
	if err != nil {
		return -1, err
	}
	status, err := c.Status()
	if err != nil {
		return -1, err
	}
	if status == libcontainer.Stopped {
		return -1, errors.New("cannot exec in a stopped container")
	}
	if status == libcontainer.Paused && !inv.flags.Bool("ignore-paused") {
		return -1, errors.New("cannot exec in a paused container (use --ignore-paused to override)")
	}
	p, err := execSpec(inv, c)
	if err != nil {
		return -1, err
	}
	cgPaths, err := subCgroupPaths(inv.flags.Slice("cgroup"))
	if err != nil {
		return -1, err
	}
	r := &launch{
		container:      c,
		action:         actRun,
		detach:         inv.flags.Bool("detach"),
		consoleSocket:  inv.flags.String("console-socket"),
		pidfdSocket:    inv.flags.String("pidfd-socket"),
		pidFile:        inv.flags.String("pid-file"),
		preserveFDs:    inv.flags.Int("preserve-fds"),
		subCgroupPaths: cgPaths,
	}
	return r.run(p)
}

// execSpec is the process to exec: --process FILE, or the container's own
// process from its bundle with the command line and flags applied.
func execSpec(inv *invocation, c *libcontainer.Container) (*specs.Process, error) {
	if path := inv.flags.String("process"); path != "" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		var p specs.Process
		if err := json.NewDecoder(f).Decode(&p); err != nil {
			return nil, err
		}
		return &p, validateProcessSpec(&p)
	}
	bundle, ok := utils.SearchLabels(c.Config().Labels, "bundle")
	if !ok {
		return nil, errors.New("bundle not found in labels")
	}
	spec, err := loadSpec(filepath.Join(bundle, specConfig))
	if err != nil {
		return nil, err
	}
	p := spec.Process
	if len(inv.args) < 2 {
		return nil, errors.New("exec args cannot be empty")
	}
	p.Args = inv.args[1:]
	if cwd := inv.flags.String("cwd"); cwd != "" {
		p.Cwd = cwd
	}
	if ap := inv.flags.String("apparmor"); ap != "" {
		p.ApparmorProfile = ap
	}
	if l := inv.flags.String("process-label"); l != "" {
		p.SelinuxLabel = l
	}
	if caps := inv.flags.Slice("cap"); len(caps) > 0 {
		if p.Capabilities == nil {
			p.Capabilities = &specs.LinuxCapabilities{}
		}
		for _, c := range caps {
			p.Capabilities.Bounding = append(p.Capabilities.Bounding, c)
			p.Capabilities.Effective = append(p.Capabilities.Effective, c)
			p.Capabilities.Permitted = append(p.Capabilities.Permitted, c)
			if p.Capabilities.Inheritable != nil {
				p.Capabilities.Ambient = append(p.Capabilities.Ambient, c)
			}
		}
	}
	p.Env = append(p.Env, inv.flags.Slice("env")...)
	p.Terminal = inv.flags.Bool("tty")
	if inv.flags.IsSet("no-new-privs") {
		p.NoNewPrivileges = inv.flags.Bool("no-new-privs")
	}
	if user := inv.flags.String("user"); user != "" {
		uids, gids, ok := strings.Cut(user, ":")
		if ok {
			gid, err := strconv.Atoi(gids)
			if err != nil {
				return nil, fmt.Errorf("bad gid: %w", err)
			}
			p.User.GID = uint32(gid)
		}
		uid, err := strconv.Atoi(uids)
		if err != nil {
			return nil, fmt.Errorf("bad uid: %w", err)
		}
		p.User.UID = uint32(uid)
	}
	for _, g := range inv.flags.Slice("additional-gids") {
		gid, err := strconv.ParseInt(g, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("invalid value %q for flag -additional-gids: %w", g, err)
		}
		if gid < 0 {
			return nil, fmt.Errorf("additional-gids must be a positive number %d", gid)
		}
		p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(gid))
	}
	return p, validateProcessSpec(p)
}

// subCgroupPaths parses --cgroup: one "path" (cgroup v2) or
// "controller[,controller]:path" items (cgroup v1).
func subCgroupPaths(args []string) (map[string]string, error) {
	if len(args) == 0 {
		return nil, nil
	}
	paths := make(map[string]string, len(args))
	for _, c := range args {
		ctrs, path, ok := strings.Cut(c, ":")
		if !ok {
			if len(args) != 1 {
				return nil, fmt.Errorf("invalid --cgroup argument: %s (missing <controller>: prefix)", c)
			}
			paths[""] = c
			continue
		}
		for _, ctrl := range strings.Split(ctrs, ",") {
			if ctrl == "" {
				return nil, fmt.Errorf("invalid --cgroup argument: %s (empty <controller> prefix)", c)
			}
			if _, dup := paths[ctrl]; dup {
				return nil, fmt.Errorf("invalid --cgroup argument(s): controller %s specified multiple times", ctrl)
			}
			paths[ctrl] = path
		}
	}
	return paths, nil
}
