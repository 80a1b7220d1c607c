// Command berthctl is a CRI client for people: inspect, debug, demo and
// benchmark any CRI endpoint (berthd, CRI-O, containerd).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const defaultEndpoint = "unix:///run/berth/berth.sock"

// command is one berthctl subcommand. Each area registers its own in an
// init function of its own file.
type command struct {
	name    string
	usage   string // arguments, e.g. "IMAGE"
	summary string
	run     func(c *cli, args []string) error
}

var commands = map[string]*command{}

func register(c *command) { commands[c.name] = c }

// cli is what every command gets: connected clients and output settings.
type cli struct {
	endpoint string
	timeout  time.Duration
	output   string // table, json or yaml
	conn     *grpc.ClientConn
	rt       runtimeapi.RuntimeServiceClient
	img      runtimeapi.ImageServiceClient
}

// ctx returns a context bounded by --timeout.
func (c *cli) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), c.timeout)
}

func usage(fs *flag.FlagSet) {
	out := fs.Output()
	fmt.Fprintf(out, "usage: berthctl [flags] COMMAND [ARGS]\n\ncommands:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		if !strings.HasPrefix(n, "__") { // hidden: for shell completion
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		c := commands[n]
		fmt.Fprintf(out, "  %-30s %s\n", strings.TrimSpace(c.name+" "+c.usage), c.summary)
	}
	fmt.Fprintf(out, "\nflags:\n")
	fs.PrintDefaults()
}

func main() {
	c := &cli{}
	fs := flag.NewFlagSet("berthctl", flag.ContinueOnError)
	endpoint := os.Getenv("BERTH_ENDPOINT")
	if endpoint == "" {
		endpoint = defaultEndpoint
	}
	fs.StringVar(&c.endpoint, "endpoint", endpoint, "CRI endpoint (env BERTH_ENDPOINT)")
	fs.DurationVar(&c.timeout, "timeout", 2*time.Minute, "timeout of each request")
	fs.StringVar(&c.output, "o", "table", "output format: table, json or yaml")
	fs.Usage = func() { usage(fs) }
	if err := fs.Parse(os.Args[1:]); err != nil {
		if err == flag.ErrHelp {
			os.Exit(0)
		}
		os.Exit(2)
	}
	args := fs.Args()
	if len(args) == 0 {
		usage(fs)
		os.Exit(2)
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "berthctl: unknown command %q (berthctl -h lists them)\n", args[0])
		os.Exit(2)
	}
	switch c.output {
	case "table", "json", "yaml":
	default:
		fmt.Fprintf(os.Stderr, "berthctl: -o %q: want table, json or yaml\n", c.output)
		os.Exit(2)
	}
	if err := c.connect(); err != nil {
		fmt.Fprintf(os.Stderr, "berthctl: %v\n", err)
		os.Exit(1)
	}
	defer c.conn.Close()
	if err := cmd.run(c, args[1:]); err != nil {
		code := 1
		var ec *exitCode
		if errors.As(err, &ec) {
			code, err = ec.code, ec.err
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "berthctl %s: %v\n", cmd.name, err)
		}
		os.Exit(code)
	}
}

// exitCode is a command's way to end berthctl with a code of its choice
// (run passes on its container's), after its deferred cleanup has run;
// err, if set, is printed first.
type exitCode struct {
	code int
	err  error
}

func (e *exitCode) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit code %d", e.code)
	}
	return e.err.Error()
}

func (c *cli) connect() error {
	target := c.endpoint
	if strings.HasPrefix(target, "/") {
		target = "unix://" + target
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)))
	if err != nil {
		return fmt.Errorf("connect %s: %w", c.endpoint, err)
	}
	c.conn = conn
	c.rt = runtimeapi.NewRuntimeServiceClient(conn)
	c.img = runtimeapi.NewImageServiceClient(conn)
	return nil
}
