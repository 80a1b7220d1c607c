package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func init() {
	register(&command{name: "run",
		usage:   "[-it] [--rm] [-p [IP:]HOST:CONTAINER[/PROTO]]... [-e K=V]... [-v HOST:CTR[:ro]]... [--name N] IMAGE [CMD [ARG...]]",
		summary: "pull an image and run it in a new pod, showing its output; exits with the container's code",
		run:     runRun})
}

// Exit codes of `berthctl run` itself, as docker and podman use them, so
// they stand apart from the container's own codes.
const (
	exitRunFailed   = 125 // berthctl or the runtime failed
	exitInterrupted = 130 // Ctrl-C before the container started
)

// podLogRoot is where kubelet keeps pod log directories; run uses the
// same layout, <namespace>_<name>_<uid>.
const podLogRoot = "/var/log/pods"

// runNamespace is the pod namespace of every pod run makes.
const runNamespace = "default"

type runOptions struct {
	image string
	args  []string // replace the image's Cmd, as docker run and podman run do

	name        string
	handler     string
	pull        string // missing, always or never
	rm          bool
	stdin, tty  bool
	stopTimeout int64
	env         envFlags
	ports       portFlags
	mounts      mountFlags
}

func parseRunFlags(args []string) (*runOptions, error) {
	o := &runOptions{}
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.BoolVar(&o.rm, "rm", false, "remove the pod and container when it ends (also on Ctrl-C)")
	fs.BoolVar(&o.stdin, "i", false, "keep stdin open to the container and send it there (through Attach)")
	fs.BoolVar(&o.tty, "t", false, "give the container a terminal")
	it := fs.Bool("it", false, "-i and -t")
	fs.StringVar(&o.name, "name", "", "pod and container name (default: run-RANDOM and the image's name)")
	fs.StringVar(&o.handler, "r", "", "runtime handler (RuntimeClass); empty for the default")
	fs.StringVar(&o.pull, "pull", "missing", "pull the image: missing, always or never")
	fs.Int64Var(&o.stopTimeout, "stop-timeout", 10, "seconds Ctrl-C waits after the stop signal before SIGKILL (a second Ctrl-C kills at once)")
	fs.Var(&o.env, "e", "environment variable KEY=VALUE (repeatable)")
	fs.Var(&o.ports, "p", "publish a port: [IP:]HOST:CONTAINER[/tcp|udp|sctp] (repeatable)")
	fs.Var(&o.mounts, "v", "bind-mount HOST:CONTAINER[:ro] (repeatable)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() < 1 {
		return nil, fmt.Errorf("want IMAGE [CMD [ARG...]]")
	}
	o.image, o.args = fs.Arg(0), fs.Args()[1:]
	if *it {
		o.stdin, o.tty = true, true
	}
	switch o.pull {
	case "missing", "always", "never":
	default:
		return nil, fmt.Errorf("-pull %q: want missing, always or never", o.pull)
	}
	if o.name != "" && !isDNSLabel(o.name) {
		return nil, fmt.Errorf("-name %q: want lowercase letters, digits and '-' (it is the pod's hostname too)", o.name)
	}
	return o, nil
}

func runRun(c *cli, args []string) error {
	o, err := parseRunFlags(args)
	if err != nil {
		return &exitCode{exitRunFailed, err}
	}
	out, err := newOutputStreamer(o)
	if err != nil {
		return &exitCode{exitRunFailed, err}
	}
	s := &runSession{c: c, o: o, out: out}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go s.handleSignals(sigs)

	code, err := s.run()
	if o.rm {
		if rerr := s.remove(); rerr != nil {
			err = errors.Join(err, rerr)
			if code == 0 {
				code = exitRunFailed
			}
		}
	}
	if err != nil || code != 0 {
		return &exitCode{code, err}
	}
	return nil
}

// runSession is one `berthctl run`: what it made, so that --rm removes
// exactly that, and what Ctrl-C must do at each step.
type runSession struct {
	c   *cli
	o   *runOptions
	out outputStreamer

	mu          sync.Mutex
	interrupts  int
	cancelPull  context.CancelFunc
	podID       string
	logDir      string
	containerID string // set once started: Ctrl-C stops it from then on
}

var errInterrupted = errors.New("interrupted")

// run does the work and returns the container's exit code, or an exit
// code of run's own with the error.
func (s *runSession) run() (int, error) {
	imageID, err := s.ensureImage()
	if err != nil {
		return s.failed(err)
	}
	pod, err := s.runPod()
	if err != nil {
		return s.failed(err)
	}
	id, err := s.createContainer(pod, imageID)
	if err != nil {
		return s.failed(err)
	}
	if err := s.start(id); err != nil {
		return s.failed(err)
	}
	if err := s.out.stream(s.c, id); err != nil {
		return exitRunFailed, fmt.Errorf("output of %s: %w", id, err)
	}
	st, err := s.c.containerStatus(id)
	if err != nil {
		return exitRunFailed, err
	}
	return int(st.ExitCode), nil
}

func (s *runSession) failed(err error) (int, error) {
	if errors.Is(err, errInterrupted) {
		return exitInterrupted, nil
	}
	return exitRunFailed, err
}

func (s *runSession) interrupted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.interrupts > 0
}

// handleSignals: before the container starts, Ctrl-C stops the pull and
// run stops after the step in flight (so nothing half-made is left to
// --rm); once it runs, Ctrl-C is StopContainer with the grace period, and
// a second one kills it.
func (s *runSession) handleSignals(sigs <-chan os.Signal) {
	for range sigs {
		s.mu.Lock()
		s.interrupts++
		n, id, cancel := s.interrupts, s.containerID, s.cancelPull
		s.mu.Unlock()
		if cancel != nil {
			cancel()
		}
		if id != "" {
			go s.stopContainer(id, n)
		}
	}
}

// stopContainer is the n-th Ctrl-C on a running container: StopContainer
// with the grace period, and with none from the second on.
func (s *runSession) stopContainer(id string, n int) {
	timeout := s.o.stopTimeout
	if n > 1 {
		timeout = 0
	}
	ctx, done := context.WithTimeout(context.Background(), time.Duration(timeout)*time.Second+s.c.timeout)
	defer done()
	if _, err := s.c.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: timeout}); err != nil {
		fmt.Fprintf(os.Stderr, "berthctl run: stop %s: %v\n", truncID(id), err)
	}
}

// ensureImage returns the image's ID, pulling it as -pull says.
func (s *runSession) ensureImage() (string, error) {
	spec := &runtimeapi.ImageSpec{Image: s.o.image}
	if s.o.pull != "always" {
		ctx, cancel := s.c.ctx()
		resp, err := s.c.img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: spec})
		cancel()
		if err != nil {
			return "", err
		}
		if resp.Image != nil {
			return resp.Image.Id, nil
		}
		if s.o.pull == "never" {
			return "", fmt.Errorf("image %s is not on the node (and -pull never)", s.o.image)
		}
	}
	ctx, cancel := s.c.ctx()
	defer cancel()
	s.mu.Lock()
	if s.interrupts > 0 {
		s.mu.Unlock()
		return "", errInterrupted
	}
	s.cancelPull = cancel
	s.mu.Unlock()
	start := time.Now()
	stop := showPullProgress(ctx, s.c, s.o.image, start)
	resp, err := s.c.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: spec})
	stop()
	s.mu.Lock()
	s.cancelPull = nil
	s.mu.Unlock()
	if err != nil {
		if s.interrupted() {
			return "", errInterrupted
		}
		return "", fmt.Errorf("pull %s: %w", s.o.image, err)
	}
	fmt.Fprintf(os.Stderr, "Pulled %s (%s) in %s\n", s.o.image, truncID(strings.TrimPrefix(resp.ImageRef, "sha256:")),
		time.Since(start).Round(time.Millisecond))
	return resp.ImageRef, nil
}

// namespaces are kubelet's defaults for a pod: its own network and IPC,
// and a PID namespace per container (so no infra process is needed).
func runNamespaces() *runtimeapi.NamespaceOption {
	return &runtimeapi.NamespaceOption{
		Network: runtimeapi.NamespaceMode_POD,
		Ipc:     runtimeapi.NamespaceMode_POD,
		Pid:     runtimeapi.NamespaceMode_CONTAINER,
	}
}

// runLabels mark what run made, for `berthctl pods -label berthctl.run=true`.
func runLabels() map[string]string { return map[string]string{"berthctl.run": "true"} }

func (s *runSession) runPod() (*runtimeapi.PodSandboxConfig, error) {
	name := s.o.name
	if name == "" {
		name = "run-" + randomHex(4)
	}
	uid := randomHex(16)
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: runNamespace, Uid: uid},
		Hostname:     name,
		LogDirectory: filepath.Join(podLogRoot, runNamespace+"_"+name+"_"+uid),
		PortMappings: s.o.ports,
		Labels:       runLabels(),
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: runNamespaces()},
		},
	}
	// The pod is made even when Ctrl-C comes meanwhile: cancelling it
	// half-way would leave berthd to clean up what --rm cannot name.
	ctx, cancel := s.c.ctx()
	defer cancel()
	resp, err := s.c.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg, RuntimeHandler: s.o.handler})
	if err != nil {
		return nil, fmt.Errorf("run pod %s: %w", name, err)
	}
	s.mu.Lock()
	s.podID, s.logDir = resp.PodSandboxId, cfg.LogDirectory
	s.mu.Unlock()
	if s.interrupted() {
		return nil, errInterrupted
	}
	return cfg, nil
}

// createContainer makes the container with what kubelet gives a pod
// that asks for nothing special: not privileged, the runtime's default
// capabilities, masked and read-only /proc paths, and the RuntimeDefault
// seccomp profile (kubelet's --seccomp-default).
func (s *runSession) createContainer(pod *runtimeapi.PodSandboxConfig, imageID string) (string, error) {
	name := s.o.name
	if name == "" {
		name = imageName(s.o.image)
	}
	cfg := &runtimeapi.ContainerConfig{
		Metadata:  &runtimeapi.ContainerMetadata{Name: name},
		Image:     &runtimeapi.ImageSpec{Image: imageID, UserSpecifiedImage: s.o.image},
		Args:      s.o.args,
		Envs:      s.o.env,
		Mounts:    s.o.mounts,
		Labels:    runLabels(),
		LogPath:   filepath.Join(name, "0.log"),
		Stdin:     s.o.stdin,
		StdinOnce: s.o.stdin,
		Tty:       s.o.tty,
		Linux: &runtimeapi.LinuxContainerConfig{
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: runNamespaces(),
				Seccomp:          &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
			},
		},
	}
	ctx, cancel := s.c.ctx()
	defer cancel()
	resp, err := s.c.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: s.podID, Config: cfg, SandboxConfig: pod,
	})
	if err != nil {
		return "", fmt.Errorf("create container %s: %w", name, err)
	}
	if s.interrupted() {
		return "", errInterrupted
	}
	return resp.ContainerId, nil
}

func (s *runSession) start(id string) error {
	ctx, cancel := s.c.ctx()
	defer cancel()
	if _, err := s.c.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		return fmt.Errorf("start container %s: %w", truncID(id), err)
	}
	s.mu.Lock()
	s.containerID = id
	n := s.interrupts
	s.mu.Unlock()
	if n > 0 {
		// Ctrl-C came while it started: it is stopped like one that came
		// later, and its output and exit code are still shown.
		go s.stopContainer(id, n)
	}
	return nil
}

// remove takes away the pod (and with it the container) and the log
// directory run named: whatever the run got to, on any way out.
func (s *runSession) remove() error {
	s.mu.Lock()
	podID, logDir := s.podID, s.logDir
	s.mu.Unlock()
	if podID == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.c.timeout)
	defer cancel()
	if _, err := s.c.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
		return fmt.Errorf("--rm: stop pod %s: %w", truncID(podID), err)
	}
	if _, err := s.c.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		return fmt.Errorf("--rm: remove pod %s: %w", truncID(podID), err)
	}
	if err := os.RemoveAll(logDir); err != nil {
		return fmt.Errorf("--rm: %w", err)
	}
	return nil
}

// outputStreamer carries a started container's output here, and with -i
// this process's stdin there, until the container exits.
type outputStreamer interface {
	stream(c *cli, containerID string) error
}

// newOutputStreamer follows the CRI log unless -i asks for stdin: the log
// has every byte from the container's first, where an attach made after
// StartContainer misses what came before it. With -i, attachStreamer
// sends stdin through the Attach RPC (see run_attach.go).
func newOutputStreamer(o *runOptions) (outputStreamer, error) {
	if o.stdin {
		return attachStreamer{tty: o.tty}, nil
	}
	return logFollower{}, nil
}

// logFollower prints the container's CRI log, stdout to stdout and stderr
// to stderr, until the container has exited.
type logFollower struct{}

func (logFollower) stream(c *cli, id string) error {
	st, err := c.containerStatus(id)
	if err != nil {
		return err
	}
	if st.LogPath == "" {
		return fmt.Errorf("container has no log path")
	}
	running := func() (bool, error) {
		st, err := c.containerStatus(id)
		if err != nil {
			return false, err
		}
		return st.State == runtimeapi.ContainerState_CONTAINER_RUNNING, nil
	}
	return followLog(st.LogPath, &logPrinter{tail: -1}, running)
}

// portFlags collects -p [IP:]HOST:CONTAINER[/PROTO].
type portFlags []*runtimeapi.PortMapping

func (p *portFlags) String() string { return fmt.Sprint(len(*p), " ports") }
func (p *portFlags) Set(v string) error {
	spec, proto, _ := strings.Cut(v, "/")
	m := &runtimeapi.PortMapping{}
	switch strings.ToLower(proto) {
	case "", "tcp":
		m.Protocol = runtimeapi.Protocol_TCP
	case "udp":
		m.Protocol = runtimeapi.Protocol_UDP
	case "sctp":
		m.Protocol = runtimeapi.Protocol_SCTP
	default:
		return fmt.Errorf("%q: protocol %q is not tcp, udp or sctp", v, proto)
	}
	i := strings.LastIndex(spec, ":")
	if i < 0 {
		return fmt.Errorf("%q: want [IP:]HOST:CONTAINER", v)
	}
	host, ctr := spec[:i], spec[i+1:]
	if j := strings.LastIndex(host, ":"); j >= 0 {
		m.HostIp, host = strings.Trim(host[:j], "[]"), host[j+1:]
	}
	hp, err1 := strconv.ParseUint(host, 10, 16)
	cp, err2 := strconv.ParseUint(ctr, 10, 16)
	if err1 != nil || err2 != nil || hp == 0 || cp == 0 {
		return fmt.Errorf("%q: ports are numbers from 1 to 65535", v)
	}
	m.HostPort, m.ContainerPort = int32(hp), int32(cp)
	*p = append(*p, m)
	return nil
}

// mountFlags collects -v HOST:CONTAINER[:ro|rw].
type mountFlags []*runtimeapi.Mount

func (m *mountFlags) String() string { return fmt.Sprint(len(*m), " mounts") }
func (m *mountFlags) Set(v string) error {
	parts := strings.Split(v, ":")
	ro := false
	if n := len(parts); n == 3 && (parts[2] == "ro" || parts[2] == "rw") {
		ro, parts = parts[2] == "ro", parts[:2]
	}
	if len(parts) != 2 || parts[0] == "" || !strings.HasPrefix(parts[1], "/") {
		return fmt.Errorf("%q: want HOST:/CONTAINER/PATH[:ro]", v)
	}
	host, err := filepath.Abs(parts[0])
	if err != nil {
		return err
	}
	*m = append(*m, &runtimeapi.Mount{HostPath: host, ContainerPath: parts[1], Readonly: ro})
	return nil
}

// imageName is a container name from an image reference: its last path
// element without tag or digest ("busybox" for docker.io/library/busybox:1).
func imageName(ref string) string {
	ref = ref[strings.LastIndex(ref, "/")+1:]
	ref, _, _ = strings.Cut(ref, "@")
	ref, _, _ = strings.Cut(ref, ":")
	var b strings.Builder
	for _, r := range strings.ToLower(ref) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	if n := strings.Trim(b.String(), "-"); n != "" {
		return n
	}
	return "run"
}

func isDNSLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
