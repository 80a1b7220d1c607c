package main

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Exit codes of a run that did not get the command's own.
const (
	exitTimeout  = 124 // the host's timeout killed the VM
	exitNoReport = 125 // the VM stopped without reporting an exit code
)

// guestRun is the guest's side of a run (guest-run.sh).
//
//go:embed guest-run.sh
var guestRun string

// vmOptions say how to boot the VM and what to run in it.
type vmOptions struct {
	img     *image
	share   string        // shared at /mnt/host; empty for none
	env     []string      // K=V exported before the command
	cmd     []string      // run with bash in /mnt/host (or /)
	timeout time.Duration // hard limit on the whole boot-run-poweroff
	smp     int
	memMiB  int
	accel   string // auto (KVM when usable), kvm or tcg
	verbose bool   // console to stderr as it comes
	console string // keep the console log here
	stdout  io.Writer
}

// vmResult is what a run gave.
type vmResult struct {
	code     int           // the command's exit code, or exitTimeout / exitNoReport
	booted   time.Duration // host time from QEMU's start to the command's start
	guestUp  string        // the guest's uptime at the command's start, as it said
	total    time.Duration
	accel    string
	consoleT string // the console's last lines, when the run failed
}

// runVM boots the VM, runs the command and returns when QEMU is gone.
// QEMU never outlives this call: it is killed on timeout and on ctx's
// end, and gets SIGKILL if this process dies (Pdeathsig).
func runVM(ctx context.Context, o vmOptions) (res vmResult, err error) {
	work, err := os.MkdirTemp("", "berth-vm.")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(work)
	ctl := filepath.Join(work, "ctl")
	if err := os.Mkdir(ctl, 0o755); err != nil {
		return res, err
	}
	files := map[string]string{"run.sh": guestRun, "cmd.sh": commandScript(o)}
	if o.share != "" {
		files["share"] = o.share + "\n"
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(ctl, name), []byte(content), 0o644); err != nil {
			return res, err
		}
	}
	outPath := filepath.Join(work, "out")
	consolePath := filepath.Join(work, "console")
	for _, p := range []string{outPath, consolePath} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			return res, err
		}
	}

	args, accel := qemuArgs(o, ctl, outPath, consolePath)
	res.accel = accel
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	t0 := time.Now()
	started := make(chan error, 1)
	exited := make(chan error, 1)
	var qemu *exec.Cmd
	go func() {
		// Pdeathsig follows the thread that started the child: keep
		// this goroutine on it until QEMU is reaped.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		qemu = exec.Command("qemu-system-x86_64", args...)
		qemu.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		var qerr bytes.Buffer
		qemu.Stdout, qemu.Stderr = &qerr, &qerr
		if err := qemu.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		err := qemu.Wait()
		if err != nil && qerr.Len() > 0 {
			err = fmt.Errorf("%w: %s", err, strings.TrimSpace(qerr.String()))
		}
		exited <- err
	}()
	if err := <-started; err != nil {
		return res, fmt.Errorf("start qemu: %w", err)
	}

	follow := newFollower(outPath, o.stdout, true)
	var consoleF *follower
	if o.verbose {
		consoleF = newFollower(consolePath, os.Stderr, false)
	}
	var qemuErr error
	timedOut := false
loop:
	for {
		select {
		case qemuErr = <-exited:
			break loop
		case <-ctx.Done():
			timedOut = errors.Is(ctx.Err(), context.DeadlineExceeded)
			syscall.Kill(-qemu.Process.Pid, syscall.SIGKILL)
			qemuErr = <-exited
			break loop
		case <-time.After(200 * time.Millisecond):
			if follow.poll() && res.booted == 0 {
				res.booted = time.Since(t0)
			}
			if consoleF != nil {
				consoleF.poll()
			}
		}
	}
	// QEMU's process group: nothing of it may stay behind.
	syscall.Kill(-qemu.Process.Pid, syscall.SIGKILL)
	follow.poll()
	follow.flush()
	if consoleF != nil {
		consoleF.poll()
		consoleF.flush()
	}
	res.total = time.Since(t0)
	res.guestUp = follow.marker
	if o.console != "" {
		copyFile(consolePath, o.console)
	}

	if timedOut {
		res.code = exitTimeout
		res.consoleT = tail(consolePath, 30)
		return res, fmt.Errorf("timed out after %s: the VM was killed", o.timeout)
	}
	b, rerr := os.ReadFile(filepath.Join(ctl, "rc"))
	if rerr != nil {
		res.code = exitNoReport
		res.consoleT = tail(consolePath, 30)
		if ctx.Err() != nil {
			return res, fmt.Errorf("interrupted: the VM was killed")
		}
		return res, fmt.Errorf("the VM stopped without reporting an exit code (qemu: %v)", qemuErr)
	}
	res.code, err = strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		res.code = exitNoReport
		return res, fmt.Errorf("bad exit code %q from the VM", b)
	}
	return res, nil
}

// qemuArgs is the machine: virtio disk (a temporary overlay keeps the
// image clean), two 9p shares (ctl: this run's command and exit code;
// host0: the caller's directory), a virtio serial port the command's
// output goes to, the console on ttyS0 into a file, no network device.
func qemuArgs(o vmOptions, ctl, outPath, consolePath string) ([]string, string) {
	accel, cpu := "tcg,thread=multi", "max"
	if o.accel == "kvm" || (o.accel == "auto" && kvmUsable()) {
		accel, cpu = "kvm", "host"
	}
	args := []string{
		"-name", "berth-vm", "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-accel", accel, "-cpu", cpu, "-smp", strconv.Itoa(o.smp), "-m", strconv.Itoa(o.memMiB),
		"-kernel", o.img.kernel, "-initrd", o.img.initrd,
		"-append", "root=/dev/vda rw console=ttyS0 systemd.unified_cgroup_hierarchy=1 panic=-1 " +
			"apparmor=0 systemd.show_status=false loglevel=4",
		"-drive", "file=" + o.img.disk + ",format=raw,if=virtio,snapshot=on,cache=unsafe",
		"-serial", "file:" + consolePath,
		"-device", "virtio-rng-pci",
		"-device", "virtio-serial-pci",
		"-chardev", "file,id=out,path=" + outPath,
		"-device", "virtserialport,chardev=out,name=berth.out",
		"-virtfs", "local,path=" + ctl + ",mount_tag=ctl,security_model=passthrough,id=ctl",
	}
	if o.share != "" {
		args = append(args, "-virtfs", "local,path="+o.share+",mount_tag=host0,security_model=passthrough,id=host0")
	}
	return args, strings.SplitN(accel, ",", 2)[0]
}

// kvmUsable says whether /dev/kvm can run an ordinary guest: it opens,
// and it is backed by hardware virtualization (kvm_intel or kvm_amd). A
// /dev/kvm of kvm_pvm (a nested host's pagetable-based KVM) only runs
// guests built for PVM; a stock Debian kernel never boots on it.
func kvmUsable() bool {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	for _, m := range []string{"kvm_intel", "kvm_amd"} {
		if _, err := os.Stat("/sys/module/" + m); err == nil {
			return true
		}
	}
	return false
}

// commandScript is cmd.sh: the environment, the directory, the command.
func commandScript(o vmOptions) string {
	var b strings.Builder
	b.WriteString("export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root\n")
	for _, kv := range o.env {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&b, "export %s=%s\n", k, shellQuote(v))
	}
	if o.share != "" {
		b.WriteString("cd /mnt/host || exit 125\n")
	} else {
		b.WriteString("cd /\n")
	}
	b.WriteString("exec")
	for _, a := range o.cmd {
		b.WriteString(" " + shellQuote(a))
	}
	b.WriteString("\n")
	return b.String()
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// follower copies what is appended to a file to w, holding back the
// guest's first line ("berth-vm: up 12.34s"), which it keeps as marker.
type follower struct {
	f       *os.File
	w       io.Writer
	pending []byte
	marker  string
	gotMark bool // the marker line has come, or none is awaited
}

func newFollower(path string, w io.Writer, wantMark bool) *follower {
	f, _ := os.Open(path)
	return &follower{f: f, w: w, gotMark: !wantMark}
}

// poll copies what is new; it says whether the marker line has come.
func (fl *follower) poll() bool {
	if fl.f == nil {
		return false
	}
	buf := make([]byte, 64<<10)
	for {
		n, err := fl.f.Read(buf)
		if n > 0 {
			fl.write(buf[:n])
		}
		if err != nil || n == 0 {
			break
		}
	}
	return fl.gotMark
}

func (fl *follower) write(b []byte) {
	if fl.gotMark {
		fl.w.Write(b)
		return
	}
	fl.pending = append(fl.pending, b...)
	i := bytes.IndexByte(fl.pending, '\n')
	if i < 0 {
		return
	}
	line := string(fl.pending[:i])
	rest := fl.pending[i+1:]
	fl.pending = nil
	fl.gotMark = true
	if up, ok := strings.CutPrefix(line, "berth-vm: up "); ok {
		fl.marker = strings.TrimSpace(up)
	} else {
		fl.w.Write([]byte(line + "\n"))
	}
	fl.w.Write(rest)
}

func (fl *follower) flush() {
	if len(fl.pending) > 0 {
		fl.w.Write(fl.pending)
		fl.pending = nil
	}
	if fl.f != nil {
		fl.f.Close()
	}
}

func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		lines = append(lines, s.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}
