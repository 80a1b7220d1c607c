// Command berthd is the Berth CRI daemon.
package main

import (
	"flag"
	"fmt"
	"os"

	"go.podman.io/storage/pkg/reexec"

	"github.com/berth-cri/berth/config"
)

// version is stamped by the Makefile from git.
var version = "dev"

type flags struct {
	configPath  string
	listen      string
	root        string
	runroot     string
	logLevel    string
	logFormat   string
	metricsAddr string
	netFallback string
	set         map[string]bool // flags given on the command line
}

func parseFlags(args []string) (*flags, []string, error) {
	f := &flags{set: map[string]bool{}}
	fs := flag.NewFlagSet("berthd", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: berthd [flags]          serve CRI\n       berthd [flags] config   print the effective config as TOML\n\n")
		fs.PrintDefaults()
	}
	def := config.Default()
	configPath := config.DefaultPath
	if p := os.Getenv("BERTH_CONFIG"); p != "" {
		configPath = p
	}
	fs.StringVar(&f.configPath, "config", configPath, "configuration file (drop-ins in <file>.d/*.toml); missing = defaults (env BERTH_CONFIG)")
	fs.StringVar(&f.listen, "listen", def.Listen, "CRI endpoint")
	fs.StringVar(&f.root, "root", def.Root, "persistent state directory")
	fs.StringVar(&f.runroot, "runroot", def.RunRoot, "runtime state directory (sockets, bundles, namespace pins)")
	fs.StringVar(&f.logLevel, "log-level", def.Log.Level, "log level: error, warn, info, debug, trace")
	fs.StringVar(&f.logFormat, "log-format", def.Log.Format, "log format: text or json")
	fs.StringVar(&f.metricsAddr, "metrics-addr", def.Metrics.Address, "host:port for Prometheus /metrics; empty = off")
	fs.StringVar(&f.netFallback, "network-fallback", def.Network.FallbackConfig,
		`pod network while the CNI config dir is empty: "none", "builtin" or a .conflist path (network.fallback_config; make run gives "builtin")`)
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	return f, fs.Args(), nil
}

// override applies the flags given on the command line over the file.
func (f *flags) override(c *config.Config) {
	if f.set["listen"] {
		c.Listen = f.listen
	}
	if f.set["root"] {
		c.Root = f.root
	}
	if f.set["runroot"] {
		c.RunRoot = f.runroot
	}
	if f.set["log-level"] {
		c.Log.Level = f.logLevel
	}
	if f.set["log-format"] {
		c.Log.Format = f.logFormat
	}
	if f.set["metrics-addr"] {
		c.Metrics.Address = f.metricsAddr
	}
	if f.set["network-fallback"] {
		c.Network.FallbackConfig = f.netFallback
	}
}

func main() {
	// The image store's overlay driver re-executes berthd to mount long
	// layer stacks; that child stops here.
	if reexec.Init() {
		return
	}
	f, args, err := parseFlags(os.Args[1:])
	if err != nil {
		if err == flag.ErrHelp {
			os.Exit(0)
		}
		os.Exit(2)
	}
	cfg, err := config.Load(f.configPath, f.override)
	if err != nil {
		fmt.Fprintf(os.Stderr, "berthd: %v\n", err)
		os.Exit(1)
	}
	switch {
	case len(args) == 0:
		if err := serve(f, cfg); err != nil {
			fmt.Fprintf(os.Stderr, "berthd: %v\n", err)
			os.Exit(1)
		}
	case args[0] == "config" && len(args) == 1:
		out, err := cfg.Encode()
		if err != nil {
			fmt.Fprintf(os.Stderr, "berthd: %v\n", err)
			os.Exit(1)
		}
		os.Stdout.Write(out)
	case args[0] == "version" && len(args) == 1:
		fmt.Printf("berthd %s\n", version)
	default:
		fmt.Fprintf(os.Stderr, "berthd: unknown command %q (try: berthd config, berthd version)\n", args[0])
		os.Exit(2)
	}
}
