package runner

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/opencontainers/runc/libcontainer"
)

var listCommand = &command{
	name:  "list",
	usage: "lists containers started by berth-runner with the given root",
	flags: []flagDef{
		flagS("format,f", "table", "select one of: table or json"),
		flagB("quiet,q", "display only container IDs"),
	},
	maxArgs: 0,
	run: func(inv *invocation) error {
		list, err := listContainers(inv)
		if err != nil {
			return err
		}
		out := inv.app.Stdout
		if inv.flags.Bool("quiet") {
			for _, s := range list {
				fmt.Fprintln(out, s.ID)
			}
			return nil
		}
		switch inv.flags.String("format") {
		case "table":
			w := tabwriter.NewWriter(out, 12, 1, 3, ' ', 0)
			fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
			for _, s := range list {
				fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.InitProcessPid, s.Status, s.Bundle, s.Created.Format(time.RFC3339Nano), s.Owner)
			}
			return w.Flush()
		case "json":
			return json.NewEncoder(out).Encode(list)
		default:
			return errors.New("invalid format option")
		}
	},
}

func listContainers(inv *invocation) ([]containerState, error) {
	root := inv.Root()
	entries, err := os.ReadDir(root)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && !inv.global.IsSet("root") {
			return nil, nil
		}
		return nil, err
	}
	var list []containerState
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // deleted meanwhile
			}
			return nil, err
		}
		owner := "#" + strconv.Itoa(int(fi.Sys().(*syscall.Stat_t).Uid))
		if u, err := user.LookupId(owner[1:]); err == nil {
			owner = u.Username
		}
		c, err := libcontainer.Load(root, e.Name())
		if err != nil {
			fmt.Fprintf(inv.app.Stderr, "load container %s: %v\n", e.Name(), err)
			continue
		}
		s, err := stateOf(c)
		if err != nil {
			fmt.Fprintf(inv.app.Stderr, "state for %s: %v\n", e.Name(), err)
			continue
		}
		s.Owner = owner
		list = append(list, *s)
	}
	return list, nil
}

var psCommand = &command{
	name:     "ps",
	usage:    "ps displays the processes running inside a container",
	argsHelp: "<container-id> [ps options]",
	flags: []flagDef{
		flagS("format,f", "table", "select one of: table or json"),
	},
	inOrder: true,
	minArgs: 1,
	maxArgs: -1,
	run: func(inv *invocation) error {
		c, err := loadContainer(inv)
		if err != nil {
			return err
		}
		pids, err := c.Processes()
		if err != nil {
			return err
		}
		switch inv.flags.String("format") {
		case "table":
		case "json":
			if pids == nil {
				pids = []int{}
			}
			return json.NewEncoder(inv.app.Stdout).Encode(pids)
		default:
			return errors.New("invalid format option")
		}
		psArgs := inv.args[1:]
		if len(psArgs) == 0 {
			psArgs = []string{"-ef"}
		}
		output, err := exec.Command("ps", psArgs...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: %s", err, output)
		}
		lines := strings.Split(string(output), "\n")
		pidIndex := slices.Index(strings.Fields(lines[0]), "PID")
		if pidIndex < 0 {
			return errors.New("couldn't find PID field in ps output")
		}
		fmt.Fprintln(inv.app.Stdout, lines[0])
		for _, line := range lines[1:] {
			fields := strings.Fields(line)
			if len(fields) <= pidIndex {
				continue
			}
			p, err := strconv.Atoi(fields[pidIndex])
			if err != nil {
				return fmt.Errorf("unable to parse pid: %w", err)
			}
			if slices.Contains(pids, p) {
				fmt.Fprintln(inv.app.Stdout, line)
			}
		}
		return nil
	},
}
