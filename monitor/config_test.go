package monitor

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func validConfig() Config {
	return Config{ID: "c1", Bundle: "/b", RuntimePath: "/usr/sbin/runc", PidFile: "/r/pid", ExitFile: "/r/exit"}
}

func TestConfigValidate(t *testing.T) {
	if err := (&Config{}).Validate(); err == nil {
		t.Fatal("empty config valid")
	}
	c := validConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Config){
		"id with slash":       func(c *Config) { c.ID = "../x" },
		"id dotdot":           func(c *Config) { c.ID = ".." },
		"no exit file":        func(c *Config) { c.ExitFile = "" },
		"relative log":        func(c *Config) { c.LogPath = "ctr.log" },
		"relative socket":     func(c *Config) { c.AttachSocket = "attach" },
		"negative line size":  func(c *Config) { c.MaxLineSize = -1 },
		"negative max output": func(c *Config) { c.MaxOutput = -1 },
		"stdin once no stdin": func(c *Config) { c.StdinOnce = true },
	} {
		c := validConfig()
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: valid", name)
		}
	}
}

func TestCreateArgs(t *testing.T) {
	c := validConfig()
	c.RuntimeRoot = "/run/runc"
	c.RuntimeArgs = []string{"--systemd-cgroup"}
	c.CreateArgs = []string{"--no-pivot"}
	got := strings.Join(createArgs(&c, "/r/console.sock"), " ")
	want := "--systemd-cgroup --root /run/runc --log /b/runtime.log --log-format json create --bundle /b --no-pivot --pid-file /r/pid --console-socket /r/console.sock c1"
	if got != want {
		t.Fatalf("create:\n got %s\nwant %s", got, want)
	}
	c.ExecProcess = "/r/process.json"
	args := createArgs(&c, "")
	if !slices.Contains(args, "exec") || !slices.Contains(args, "--detach") || slices.Contains(args, "create") || args[len(args)-1] != "c1" {
		t.Fatalf("exec args: %q", args)
	}
}

func TestExitFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "exit")
	if _, err := ReadExitFile(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing exit file: %v, want ErrNotExist", err)
	}
	at := time.Date(2024, 5, 6, 7, 8, 9, 10, time.UTC)
	// 9 = SIGKILL in the low byte: killed by a signal.
	e := exitFromStatus(42, syscall.WaitStatus(9), at, true)
	if e.ExitCode != 137 || e.Signal != 9 || !e.OOMKilled {
		t.Fatalf("signal status: %+v", e)
	}
	if err := writeExitFile(path, e); err != nil {
		t.Fatal(err)
	}
	got, err := ReadExitFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if *got != *e || !got.ExitedAt.Equal(at) {
		t.Fatalf("round trip: %+v, want %+v", got, e)
	}
	if e := exitFromStatus(1, syscall.WaitStatus(7<<8), at, false); e.ExitCode != 7 || e.Signal != 0 {
		t.Fatalf("exit status 7: %+v", e)
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Fatalf("temp files left: %v", ents)
	}
}

func TestWaitExitPoll(t *testing.T) {
	path := filepath.Join(t.TempDir(), "exit")
	go func() {
		time.Sleep(50 * time.Millisecond)
		writeExitFile(path, &Exit{Pid: 1, ExitCode: 3})
	}()
	ctx := t.Context()
	e, err := WaitExit(ctx, path, 0)
	if err != nil || e.ExitCode != 3 {
		t.Fatalf("WaitExit = %+v, %v", e, err)
	}
}
