package runner

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestFlagsRuncConventions(t *testing.T) {
	fs := newFlagSet(false, createFlags...)
	// flags after the id, short aliases, --flag=value
	if err := fs.parse([]string{"-b", "/bundle", "id1", "--pid-file=/p", "--no-pivot", "--preserve-fds", "2"}); err != nil {
		t.Fatal(err)
	}
	if fs.String("bundle") != "/bundle" || fs.String("pid-file") != "/p" || !fs.Bool("no-pivot") ||
		fs.Int("preserve-fds") != 2 || !reflect.DeepEqual(fs.args, []string{"id1"}) {
		t.Fatalf("parsed %v args %v", fs.values, fs.args)
	}
	if fs.IsSet("console-socket") {
		t.Error("console-socket set")
	}
}

func TestFlagsExecStopsAtCommand(t *testing.T) {
	fs := newFlagSet(true, execCommand.flags...)
	if err := fs.parse([]string{"--env", "A=1", "--env", "B=2", "-t", "ctr", "sh", "-c", "--env"}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fs.Slice("env"), []string{"A=1", "B=2"}) || !fs.Bool("tty") ||
		!reflect.DeepEqual(fs.args, []string{"ctr", "sh", "-c", "--env"}) {
		t.Fatalf("env %v tty %v args %v", fs.Slice("env"), fs.Bool("tty"), fs.args)
	}
}

func TestFlagsErrors(t *testing.T) {
	for _, args := range [][]string{{"--bogus"}, {"--preserve-fds", "x"}, {"--bundle"}, {"--no-pivot=maybe"}} {
		if err := newFlagSet(false, createFlags...).parse(args); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	if err := newFlagSet(false).parse([]string{"-h"}); !errors.Is(err, errHelp) {
		t.Errorf("-h: %v", err)
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]int{"9": 9, "KILL": 9, "SIGTERM": 15, "term": 15, "usr1": 10} {
		if s, err := parseSignal(in); err != nil || int(s) != want {
			t.Errorf("%s: %v %v", in, s, err)
		}
	}
	if _, err := parseSignal("NOPE"); err == nil {
		t.Error("NOPE accepted")
	}
}

func TestMainExitCodesAndMessages(t *testing.T) {
	root := t.TempDir()
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		app := &App{Version: "test", Stdout: &out, Stderr: &errb}
		code := app.Main(append([]string{Name, "--root", root}, args...))
		return code, out.String(), errb.String()
	}
	if code, _, _ := run("kill"); code != 1 {
		t.Errorf("kill without id: exit %d", code)
	}
	if code, _, _ := run("state", "--bogus", "x"); code != 1 {
		t.Errorf("unknown flag: exit %d", code)
	}
	// The systemd driver is a global flag, accepted before any command.
	if code, out, errs := run("--systemd-cgroup", "list", "-q"); code != 0 || out != "" {
		t.Errorf("--systemd-cgroup list: exit %d %q %s", code, out, errs)
	}
	if code, out, _ := run("list", "-q"); code != 0 || out != "" {
		t.Errorf("list of an empty root: %d %q", code, out)
	}
	if code, out, _ := run("features"); code != 0 || !strings.Contains(out, `"ociVersionMin"`) {
		t.Errorf("features: %d %q", code, out)
	}
	if code, _, _ := run("--root", "/", "list"); code != 1 {
		t.Errorf("--root /: exit %d", code)
	}
}

func TestSubCgroupPaths(t *testing.T) {
	p, err := subCgroupPaths([]string{"cpu,memory:sub", "pids:other"})
	if err != nil || !reflect.DeepEqual(p, map[string]string{"cpu": "sub", "memory": "sub", "pids": "other"}) {
		t.Fatalf("%v %v", p, err)
	}
	if p, err := subCgroupPaths([]string{"v2path"}); err != nil || p[""] != "v2path" {
		t.Fatalf("%v %v", p, err)
	}
	if _, err := subCgroupPaths([]string{"a", "b"}); err == nil {
		t.Error("two v2 paths accepted")
	}
}
