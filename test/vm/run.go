package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// machineFlags are the flags run and lane share.
type machineFlags struct {
	cache, src, console string
	accel               string
	smp, mem            int
	verbose             bool
}

func (m *machineFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&m.cache, "cache", "build/cache", "cache directory (the image is under <cache>/vm)")
	fs.StringVar(&m.src, "src", "test/vm", "this lane's directory (image.sh, guest/)")
	fs.StringVar(&m.console, "console", "", "write the VM's console log to this file")
	fs.StringVar(&m.accel, "accel", "auto", "auto (KVM when /dev/kvm is hardware KVM, else TCG), kvm or tcg")
	fs.IntVar(&m.smp, "smp", 2, "virtual CPUs")
	fs.IntVar(&m.mem, "mem", 4096, "memory in MiB")
	fs.BoolVar(&m.verbose, "v", false, "copy the VM's console to stderr")
}

func runMain(args []string) int {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	var m machineFlags
	m.register(fs)
	share := fs.String("share", "", "directory shared read-write at /mnt/host; the command starts there")
	timeout := fs.Duration("timeout", 30*time.Minute, "hard limit for boot, command and power-off")
	var env stringList
	fs.Var(&env, "env", "K=V exported for the command (repeatable)")
	fs.Parse(args)
	if fs.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: go run ./test/vm run [-share DIR] [-env K=V] [-timeout D] [--] CMD [ARG...]")
		return 2
	}
	for _, kv := range env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			fmt.Fprintf(os.Stderr, "vm: -env %q: want K=V\n", kv)
			return 2
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	res, err := boot(ctx, m, *share, env, fs.Args(), *timeout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vm: %v\n", err)
		if res.code == 0 {
			return exitNoReport
		}
	}
	return res.code
}

// boot finds the image (building it if needed) and runs one command in
// a fresh VM, reporting the timings on stderr.
func boot(ctx context.Context, m machineFlags, share string, env, cmd []string, timeout time.Duration) (vmResult, error) {
	img, err := ensureImage(m.src, m.cache, os.Stderr)
	if err != nil {
		return vmResult{code: exitNoReport}, err
	}
	if share != "" {
		if share, err = filepath.Abs(share); err != nil {
			return vmResult{code: exitNoReport}, err
		}
	}
	o := vmOptions{img: img, share: share, env: env, cmd: cmd, timeout: timeout,
		smp: m.smp, memMiB: m.mem, accel: m.accel, verbose: m.verbose, console: m.console, stdout: os.Stdout}
	res, err := runVM(ctx, o)
	if res.guestUp == "" {
		res.guestUp = "never reached"
	}
	fmt.Fprintf(os.Stderr, "vm: %s, booted to the command in %s (guest uptime %s), exit %d, %s in all\n",
		res.accel, res.booted.Round(100*time.Millisecond), res.guestUp, res.code, res.total.Round(100*time.Millisecond))
	if res.consoleT != "" {
		fmt.Fprintf(os.Stderr, "vm: the console's last lines:\n%s\n", res.consoleT)
	}
	return res, err
}
