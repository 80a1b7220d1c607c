package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func init() {
	register(&command{name: "create", usage: "[-f FILE] [-name N] [-env K=V]... [-label K=V]... [-workdir DIR] POD-ID [IMAGE [CMD [ARG...]]]",
		summary: "create a container in a pod (flags, or a ContainerConfig file)", run: runCreate})
	register(&command{name: "start", usage: "ID...", summary: "start created containers", run: runStart})
	register(&command{name: "stop", usage: "[-t SECONDS] ID...", summary: "stop containers (stop signal, grace period, then SIGKILL)", run: runStop})
	register(&command{name: "rm", usage: "ID...", summary: "remove containers (running ones are killed first)", run: runRm})
	register(&command{name: "ps", usage: "[-a] [-q] [-pod ID] [-state S] [-label K=V]... [ID]", summary: "list containers (running ones unless -a)", run: runPs})
	register(&command{name: "inspect", usage: "ID...", summary: "show container status, verbose (pid and OCI spec)", run: runInspect})
	register(&command{name: "exec", usage: "[-i] [-t] [-stream] [-timeout SECONDS] ID CMD [ARG...]", summary: "run a command in a container (ExecSync; streamed with -i, -t or -stream); exits with its code", run: runExec})
	register(&command{name: "logs", usage: "[-f] [-timestamps] [-tail N] ID", summary: "print a container's log (read from the node's log file)", run: runLogs})
}

// envFlags collects repeated -env K=V in order.
type envFlags []*runtimeapi.KeyValue

func (e *envFlags) String() string { return fmt.Sprint(len(*e), " variables") }
func (e *envFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", v)
	}
	*e = append(*e, &runtimeapi.KeyValue{Key: k, Value: []byte(val)})
	return nil
}

func runCreate(c *cli, args []string) error {
	fs := flag.NewFlagSet("create", flag.ContinueOnError)
	file := fs.String("f", "", "ContainerConfig file, JSON or YAML (- for stdin); flags and arguments override it")
	name := fs.String("name", "", "container name (default: the image's last path element)")
	attempt := fs.Uint("attempt", 0, "attempt number")
	workdir := fs.String("workdir", "", "working directory")
	tty := fs.Bool("tty", false, "give the container a terminal")
	logPath := fs.String("log", "", "log path relative to the pod's log directory (default NAME.log)")
	var env envFlags
	fs.Var(&env, "env", "environment variable KEY=VALUE (repeatable)")
	labels := labelFlags{}
	fs.Var(labels, "label", "label KEY=VALUE (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 1 {
		return fmt.Errorf("want POD-ID [IMAGE [CMD [ARG...]]]")
	}
	cfg := &runtimeapi.ContainerConfig{}
	if *file != "" {
		if err := loadMessage(*file, cfg); err != nil {
			return err
		}
	}
	if fs.NArg() >= 2 {
		cfg.Image = &runtimeapi.ImageSpec{Image: fs.Arg(1)}
	}
	if fs.NArg() >= 3 {
		cfg.Command, cfg.Args = fs.Args()[2:3], fs.Args()[3:]
	}
	if cfg.GetImage().GetImage() == "" {
		return fmt.Errorf("no image: give IMAGE or a config file with one")
	}
	if cfg.Metadata == nil {
		cfg.Metadata = &runtimeapi.ContainerMetadata{}
	}
	if *name != "" {
		cfg.Metadata.Name = *name
	}
	if cfg.Metadata.Name == "" {
		img := cfg.Image.Image
		img = img[strings.LastIndex(img, "/")+1:]
		cfg.Metadata.Name, _, _ = strings.Cut(strings.SplitN(img, "@", 2)[0], ":")
	}
	if *attempt > 0 {
		cfg.Metadata.Attempt = uint32(*attempt)
	}
	if *workdir != "" {
		cfg.WorkingDir = *workdir
	}
	if *tty {
		cfg.Tty = true
	}
	cfg.Envs = append(cfg.Envs, env...)
	if len(labels) > 0 && cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	for k, v := range labels {
		cfg.Labels[k] = v
	}
	switch {
	case *logPath != "":
		cfg.LogPath = *logPath
	case cfg.LogPath == "":
		cfg.LogPath = cfg.Metadata.Name + ".log"
	}
	ctx, cancel := c.ctx()
	defer cancel()
	resp, err := c.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: fs.Arg(0), Config: cfg})
	if err != nil {
		return err
	}
	return c.print(resp, []string{"CONTAINER ID"}, [][]string{{resp.ContainerId}})
}

// eachID runs one RPC per id and reports each done, as crictl does.
func eachID(c *cli, args []string, verb string, fn func(id string) error) error {
	if len(args) == 0 {
		return fmt.Errorf("want at least one container ID")
	}
	for _, id := range args {
		if err := fn(id); err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
		fmt.Println(verb, id)
	}
	return nil
}

func runStart(c *cli, args []string) error {
	return eachID(c, args, "Started", func(id string) error {
		ctx, cancel := c.ctx()
		defer cancel()
		_, err := c.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id})
		return err
	})
}

func runStop(c *cli, args []string) error {
	fs := flag.NewFlagSet("stop", flag.ContinueOnError)
	timeout := fs.Int64("t", 10, "seconds to wait after the stop signal before SIGKILL (0 kills at once)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return eachID(c, fs.Args(), "Stopped", func(id string) error {
		ctx, cancel := c.ctx()
		defer cancel()
		_, err := c.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: *timeout})
		return err
	})
}

func runRm(c *cli, args []string) error {
	return eachID(c, args, "Removed", func(id string) error {
		ctx, cancel := c.ctx()
		defer cancel()
		_, err := c.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id})
		return err
	})
}

var containerStates = map[string]runtimeapi.ContainerState{
	"created": runtimeapi.ContainerState_CONTAINER_CREATED,
	"running": runtimeapi.ContainerState_CONTAINER_RUNNING,
	"exited":  runtimeapi.ContainerState_CONTAINER_EXITED,
	"unknown": runtimeapi.ContainerState_CONTAINER_UNKNOWN,
}

func containerStateName(s runtimeapi.ContainerState) string {
	n := strings.ToLower(strings.TrimPrefix(s.String(), "CONTAINER_"))
	return strings.ToUpper(n[:1]) + n[1:]
}

func runPs(c *cli, args []string) error {
	fs := flag.NewFlagSet("ps", flag.ContinueOnError)
	all := fs.Bool("a", false, "all containers, not only running ones")
	quiet := fs.Bool("q", false, "print container IDs only")
	pod := fs.String("pod", "", "only containers of this pod (ID or prefix)")
	state := fs.String("state", "", "only containers in this state: created, running, exited")
	labels := labelFlags{}
	fs.Var(labels, "label", "only containers with this label KEY=VALUE (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("takes at most one ID (or ID prefix)")
	}
	filter := &runtimeapi.ContainerFilter{Id: fs.Arg(0), PodSandboxId: *pod, LabelSelector: labels}
	switch {
	case *state != "":
		s, ok := containerStates[strings.ToLower(*state)]
		if !ok {
			return fmt.Errorf("-state %q: want created, running or exited", *state)
		}
		filter.State = &runtimeapi.ContainerStateValue{State: s}
	case !*all:
		filter.State = &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}
	}
	ctx, cancel := c.ctx()
	defer cancel()
	resp, err := c.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: filter})
	if err != nil {
		return err
	}
	if *quiet {
		for _, ct := range resp.Containers {
			fmt.Println(ct.Id)
		}
		return nil
	}
	rows := make([][]string, 0, len(resp.Containers))
	for _, ct := range resp.Containers {
		rows = append(rows, []string{
			truncID(ct.Id), ct.GetImage().GetImage(), time.Unix(0, ct.CreatedAt).Format(time.RFC3339),
			containerStateName(ct.State), ct.GetMetadata().GetName(), fmt.Sprint(ct.GetMetadata().GetAttempt()), truncID(ct.PodSandboxId),
		})
	}
	return c.print(resp, []string{"CONTAINER", "IMAGE", "CREATED", "STATE", "NAME", "ATTEMPT", "POD ID"}, rows)
}

func runInspect(c *cli, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("want at least one container ID")
	}
	for _, id := range args {
		ctx, cancel := c.ctx()
		resp, err := c.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true})
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
		if c.output != "table" {
			if err := c.print(resp, nil, nil); err != nil {
				return err
			}
			continue
		}
		st := resp.Status
		when := func(ns int64) string {
			if ns == 0 {
				return "-"
			}
			return time.Unix(0, ns).Format(time.RFC3339Nano)
		}
		rows := [][]string{
			{"ID", st.Id},
			{"Name", st.GetMetadata().GetName()},
			{"Attempt", fmt.Sprint(st.GetMetadata().GetAttempt())},
			{"State", containerStateName(st.State)},
			{"Image", st.GetImage().GetImage()},
			{"ImageRef", st.ImageRef},
			{"Created", when(st.CreatedAt)},
			{"Started", when(st.StartedAt)},
			{"Finished", when(st.FinishedAt)},
			{"ExitCode", fmt.Sprint(st.ExitCode)},
			{"Reason", st.Reason},
			{"Message", st.Message},
			{"LogPath", st.LogPath},
		}
		for _, m := range st.Mounts {
			rows = append(rows, []string{"Mount", fmt.Sprintf("%s -> %s (ro=%v)", m.HostPath, m.ContainerPath, m.Readonly)})
		}
		var info struct {
			Pid            int    `json:"pid"`
			MonitorPid     int    `json:"monitorPid"`
			RuntimeHandler string `json:"runtimeHandler"`
		}
		if json.Unmarshal([]byte(resp.Info["info"]), &info) == nil {
			rows = append(rows, []string{"Pid", fmt.Sprint(info.Pid)}, []string{"MonitorPid", fmt.Sprint(info.MonitorPid)},
				[]string{"Runtime", info.RuntimeHandler})
		}
		if err := c.print(resp, []string{"FIELD", "VALUE"}, rows); err != nil {
			return err
		}
	}
	return nil
}

func runExec(c *cli, args []string) error {
	fs := flag.NewFlagSet("exec", flag.ContinueOnError)
	timeout := fs.Int64("timeout", 0, "seconds before the command is killed (0: none; ExecSync only)")
	stdin := fs.Bool("i", false, "stream: send stdin to the command")
	tty := fs.Bool("t", false, "stream: give the command a terminal")
	streamed := fs.Bool("stream", false, "stream output as it comes (Exec) instead of when the command ends (ExecSync)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 2 {
		return fmt.Errorf("want ID CMD [ARG...]")
	}
	if *stdin || *tty || *streamed {
		return streamExec(c, fs.Arg(0), fs.Args()[1:], *stdin, *tty)
	}
	ctx, cancel := c.ctx()
	defer cancel()
	resp, err := c.rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: fs.Arg(0), Cmd: fs.Args()[1:], Timeout: *timeout})
	if err != nil {
		return err
	}
	if c.output != "table" {
		return c.print(resp, nil, nil)
	}
	os.Stdout.Write(resp.Stdout)
	os.Stderr.Write(resp.Stderr)
	if resp.ExitCode != 0 {
		os.Exit(int(resp.ExitCode))
	}
	return nil
}

// runLogs prints a container's log from the file berthd writes (on this
// node): the text of each stream, partial records joined.
func runLogs(c *cli, args []string) error {
	fs := flag.NewFlagSet("logs", flag.ContinueOnError)
	follow := fs.Bool("f", false, "keep printing new lines until the container exits")
	stamps := fs.Bool("timestamps", false, "prefix each line with its time")
	tail := fs.Int("tail", -1, "print only the last N lines")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("want one container ID")
	}
	st, err := c.containerStatus(fs.Arg(0))
	if err != nil {
		return err
	}
	if st.LogPath == "" {
		return fmt.Errorf("container %s has no log (its pod has no log directory)", st.Id)
	}
	lp := &logPrinter{stamps: *stamps, tail: *tail}
	var running func() (bool, error)
	if *follow {
		running = func() (bool, error) {
			st, err := c.containerStatus(st.Id)
			return err == nil && st.State == runtimeapi.ContainerState_CONTAINER_RUNNING, err
		}
	}
	return followLog(st.LogPath, lp, running)
}

func (c *cli) containerStatus(id string) (*runtimeapi.ContainerStatus, error) {
	ctx, cancel := c.ctx()
	defer cancel()
	resp, err := c.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		return nil, err
	}
	return resp.Status, nil
}

// logPrinter turns CRI log records back into each stream's lines: "P"
// records continue a line, an "F" record ends it.
type logPrinter struct {
	stamps bool
	// tail >= 0 holds the last tail lines until the end of the file.
	tail    int
	held    []logOut
	partial map[string]*strings.Builder
}

type logOut struct{ stream, text string }

func (p *logPrinter) record(line string) {
	parts := strings.SplitN(line, " ", 4)
	if len(parts) < 3 {
		return // not a CRI record
	}
	ts, stream, tag, text := parts[0], parts[1], parts[2], ""
	if len(parts) == 4 {
		text = parts[3]
	}
	if p.partial == nil {
		p.partial = map[string]*strings.Builder{}
	}
	b := p.partial[stream]
	if b == nil {
		b = &strings.Builder{}
		p.partial[stream] = b
	}
	if p.stamps && b.Len() == 0 {
		b.WriteString(ts + " ")
	}
	b.WriteString(text)
	if tag != "F" {
		return
	}
	b.WriteByte('\n')
	out := logOut{stream, b.String()}
	b.Reset()
	if p.tail < 0 {
		out.print()
		return
	}
	p.held = append(p.held, out)
	if len(p.held) > p.tail {
		p.held = p.held[1:]
	}
}

// endOfFile prints the held tail; later lines (with -f) print at once.
func (p *logPrinter) endOfFile() {
	for _, o := range p.held {
		o.print()
	}
	p.held, p.tail = nil, -1
}

func (o logOut) print() {
	if o.stream == "stderr" {
		os.Stderr.WriteString(o.text)
	} else {
		os.Stdout.WriteString(o.text)
	}
}
