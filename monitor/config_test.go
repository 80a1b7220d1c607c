package monitor

import (
	"encoding/json"
	"reflect"
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
		"restore and exec": func(c *Config) {
			c.RestoreImagePath, c.RestoreWorkPath, c.ExecProcess = "/i", "/w", "/p.json"
		},
		"restore without work path": func(c *Config) { c.RestoreImagePath = "/i" },
		"restore with terminal":     func(c *Config) { c.RestoreImagePath, c.RestoreWorkPath, c.Terminal = "/i", "/w", true },
		"criu without restore":      func(c *Config) { c.CriuPath = "/usr/sbin/criu" },
		"relative restore images":   func(c *Config) { c.RestoreImagePath, c.RestoreWorkPath = "i", "/w" },
	} {
		c := validConfig()
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: valid", name)
		}
	}
}

// Every field but MonitorLogPath (the monitor's stderr) crosses the wire,
// whatever bytes its strings hold.
func TestConfigWireRoundTrip(t *testing.T) {
	var c Config
	v := reflect.ValueOf(&c).Elem()
	for i := range v.NumField() {
		f, name := v.Field(i), v.Type().Field(i).Name
		switch f.Kind() {
		case reflect.String:
			f.SetString("/" + name + " \"quoted\"\n\ttab\x00nul é")
		case reflect.Slice:
			f.Set(reflect.ValueOf([]string{name + "-1", "", "a b\nc"}))
		case reflect.Int, reflect.Int64:
			f.SetInt(int64(100 + i))
		case reflect.Bool:
			f.SetBool(true)
		default:
			t.Fatalf("field %s: kind %v not covered by the test", name, f.Kind())
		}
	}
	c.MonitorLogPath = ""
	got, err := DecodeConfig(c.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, c)
	}
	valid := validConfig()
	if got, err := DecodeConfig(valid.Encode()); err != nil || !reflect.DeepEqual(got, valid) {
		t.Fatalf("zero fields: %+v, %v", got, err)
	}
	for _, bad := range []string{"nope \"x\"\n", "id x\n", "max_output 1e3\n", "stdin maybe\n"} {
		if _, err := DecodeConfig([]byte(bad)); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
}

func TestSyncReport(t *testing.T) {
	for _, r := range []SyncReport{
		{Pid: 42},
		{Pid: 42, RuntimeNS: 12345678},
		{Error: "runc: \"bad\"\nsecond line", RuntimeFailed: true},
		{Error: "exit file directory: gone"},
	} {
		got, err := ParseSyncReport(string(r.encode()))
		if err != nil || got != r {
			t.Fatalf("round trip of %+v: %+v, %v", r, got, err)
		}
	}
	for _, bad := range []string{"", "pid x\n", "pid 0\n", "pid 42 x\n", "hello\n", "error unquoted\n"} {
		if _, err := ParseSyncReport(bad); err == nil {
			t.Errorf("%q parsed", bad)
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
	r := validConfig()
	r.RestoreImagePath, r.RestoreWorkPath, r.CriuPath = "/r/images", "/r/work", "/opt/criu/criu"
	got = strings.Join(createArgs(&r, ""), " ")
	want = "--log /b/runtime.log --log-format json restore --detach --bundle /b --image-path /r/images --work-path /r/work --pid-file /r/pid c1"
	if got != want {
		t.Fatalf("restore:\n got %s\nwant %s", got, want)
	}
	env := runtimeEnv(&r, []string{"PATH=/usr/bin:/bin", "HOME=/root"})
	if !slices.Contains(env, "PATH=/opt/criu:/usr/bin:/bin") {
		t.Fatalf("restore env %q: want CRIU's directory first in PATH", env)
	}
	// An older monitor refuses a restore's keys rather than create.
	if _, err := DecodeConfig([]byte("restore_image_path \"/i\"\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeConfig([]byte("restore_from_future \"/i\"\n")); err == nil || !strings.HasPrefix(err.Error(), UnknownKeyError) {
		t.Fatalf("unknown key: %v, want %q", err, UnknownKeyError)
	}
	c.ExecProcess = "/r/process.json"
	args := createArgs(&c, "")
	if !slices.Contains(args, "exec") || !slices.Contains(args, "--detach") || slices.Contains(args, "create") || args[len(args)-1] != "c1" {
		t.Fatalf("exec args: %q", args)
	}
}

func TestExitFromStatus(t *testing.T) {
	at := time.Date(2024, 5, 6, 7, 8, 9, 10, time.UTC)
	// 9 = SIGKILL in the low byte: killed by a signal.
	if e := exitFromStatus(42, syscall.WaitStatus(9), at, true); e.ExitCode != 137 || e.Signal != 9 || !e.OOMKilled {
		t.Fatalf("signal status: %+v", e)
	}
	if e := exitFromStatus(1, syscall.WaitStatus(7<<8), at, false); e.ExitCode != 7 || e.Signal != 0 {
		t.Fatalf("exit status 7: %+v", e)
	}
}

// The hand-written exit record says what encoding/json says.
func TestExitJSON(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	for _, e := range []Exit{
		{},
		{Pid: 42, ExitCode: 137, Signal: 9, ExitedAt: time.Date(2024, 5, 6, 7, 8, 9, 10, time.UTC), OOMKilled: true},
		{Pid: 1 << 22, ExitCode: -1, ExitedAt: time.Date(9999, 12, 31, 23, 59, 59, 999999999, cet).UTC()},
	} {
		b := e.appendJSON(nil)
		var got Exit
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if got != e || !got.ExitedAt.Equal(e.ExitedAt) {
			t.Fatalf("%s decodes to %+v, want %+v", b, got, e)
		}
		var fields, want map[string]any
		json.Unmarshal(b, &fields)
		std, _ := json.Marshal(e)
		json.Unmarshal(std, &want)
		delete(fields, "exited_at")
		delete(want, "exited_at")
		if !reflect.DeepEqual(fields, want) {
			t.Fatalf("%s has fields %v, encoding/json %v", b, fields, want)
		}
	}
}

func TestTimestampMatchesTimeFormat(t *testing.T) {
	const layout = "2006-01-02T15:04:05.000000000Z07:00"
	times := []time.Time{
		time.Date(2016, 10, 6, 0, 17, 9, 669794202, time.FixedZone("CEST", 2*3600)),
		time.Date(2020, 1, 2, 3, 4, 5, 100, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2400, 2, 29, 23, 59, 59, 999999999, time.UTC),
		time.Now(),
	}
	for i := int64(0); i < 2000; i++ {
		times = append(times, time.Unix(i*7919*86400/3+i*104729, i*999983))
	}
	for _, tm := range times {
		want := tm.UTC().Format(layout)
		if got := string(appendTimestamp(nil, tm)); got != want {
			t.Fatalf("appendTimestamp(%v) = %s, want %s", tm, got, want)
		}
	}
}
