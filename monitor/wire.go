package monitor

// The config's and the sync report's encodings. Both ends are this
// package's code, built together, so the format can be the simplest that
// carries any string: one "key value" line per field, strings quoted with
// strconv.Quote, lists as one line per element. encoding/json would do,
// but it links reflect and about 700 KiB of code and tables into a binary
// that runs once per container (see the README's monitor memory section).

import (
	"errors"
	"strconv"
	"strings"
)

// Encode is c on the wire, for DecodeConfig in the monitor.
// MonitorLogPath is not sent: it is the monitor's stderr, opened by Start.
func (c *Config) Encode() []byte {
	var b []byte
	str := func(key, v string) {
		if v != "" {
			b = append(b, key...)
			b = append(b, ' ')
			b = strconv.AppendQuote(b, v)
			b = append(b, '\n')
		}
	}
	num := func(key string, v int64) {
		if v != 0 {
			b = append(b, key...)
			b = append(b, ' ')
			b = strconv.AppendInt(b, v, 10)
			b = append(b, '\n')
		}
	}
	flag := func(key string, v bool) {
		if v {
			b = append(b, key...)
			b = append(b, " true\n"...)
		}
	}
	str("id", c.ID)
	str("bundle", c.Bundle)
	str("runtime_path", c.RuntimePath)
	str("runtime_root", c.RuntimeRoot)
	for _, a := range c.RuntimeArgs {
		b = append(b, "runtime_arg "...)
		b = append(strconv.AppendQuote(b, a), '\n')
	}
	for _, a := range c.CreateArgs {
		b = append(b, "create_arg "...)
		b = append(strconv.AppendQuote(b, a), '\n')
	}
	str("runtime_log_path", c.RuntimeLogPath)
	str("exec_process", c.ExecProcess)
	str("restore_image_path", c.RestoreImagePath)
	str("restore_work_path", c.RestoreWorkPath)
	str("criu_path", c.CriuPath)
	str("pid_file", c.PidFile)
	str("exit_file", c.ExitFile)
	str("log_path", c.LogPath)
	str("log_dir", c.LogDir)
	num("max_line_size", int64(c.MaxLineSize))
	num("max_output", c.MaxOutput)
	str("attach_socket", c.AttachSocket)
	str("control_socket", c.ControlSocket)
	flag("terminal", c.Terminal)
	flag("stdin", c.Stdin)
	flag("stdin_once", c.StdinOnce)
	num("attach_fd", int64(c.AttachFD))
	str("cgroup_path", c.CgroupPath)
	return b
}

// DecodeConfig reads what Encode wrote. An unknown key is an error: the
// monitor and its caller are built from one tree, and a monitor older than
// its caller must refuse a mode it does not know (a restore) rather than
// run a create in its place. The error names the key (UnknownKeyError),
// which berthd reports as an old monitor.
func DecodeConfig(b []byte) (Config, error) {
	var c Config
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" {
			continue
		}
		key, val, _ := strings.Cut(line, " ")
		var err error
		str := func(p *string) { *p, err = strconv.Unquote(val) }
		list := func(p *[]string) {
			var s string
			if s, err = strconv.Unquote(val); err == nil {
				*p = append(*p, s)
			}
		}
		num := func(p *int64) { *p, err = strconv.ParseInt(val, 10, 64) }
		flag := func(p *bool) { *p, err = strconv.ParseBool(val) }
		var n int64
		switch key {
		case "id":
			str(&c.ID)
		case "bundle":
			str(&c.Bundle)
		case "runtime_path":
			str(&c.RuntimePath)
		case "runtime_root":
			str(&c.RuntimeRoot)
		case "runtime_arg":
			list(&c.RuntimeArgs)
		case "create_arg":
			list(&c.CreateArgs)
		case "runtime_log_path":
			str(&c.RuntimeLogPath)
		case "exec_process":
			str(&c.ExecProcess)
		case "restore_image_path":
			str(&c.RestoreImagePath)
		case "restore_work_path":
			str(&c.RestoreWorkPath)
		case "criu_path":
			str(&c.CriuPath)
		case "pid_file":
			str(&c.PidFile)
		case "exit_file":
			str(&c.ExitFile)
		case "log_path":
			str(&c.LogPath)
		case "log_dir":
			str(&c.LogDir)
		case "max_line_size":
			num(&n)
			c.MaxLineSize = int(n)
		case "max_output":
			num(&c.MaxOutput)
		case "attach_socket":
			str(&c.AttachSocket)
		case "control_socket":
			str(&c.ControlSocket)
		case "terminal":
			flag(&c.Terminal)
		case "stdin":
			flag(&c.Stdin)
		case "stdin_once":
			flag(&c.StdinOnce)
		case "attach_fd":
			num(&n)
			c.AttachFD = int(n)
		case "cgroup_path":
			str(&c.CgroupPath)
		default:
			return Config{}, errors.New(UnknownKeyError + strconv.Quote(key))
		}
		if err != nil {
			return Config{}, errors.New("monitor config: bad " + key + " " + strconv.Quote(val))
		}
	}
	return c, nil
}

// UnknownKeyError begins a monitor's complaint about a config key it does
// not know; the monitor's caller looks for it in the monitor's log.
const UnknownKeyError = "monitor config: unknown key "

// The sync report: the monitor's one line to its caller once the runtime
// created the container, or failed to.
const (
	syncPid          = "pid"           // "pid N": created; N is the container's pid
	syncRuntimeError = "runtime-error" // "runtime-error MSG": the runtime failed; MSG from its stderr
	syncError        = "error"         // "error MSG": the monitor failed before or after the runtime
)

// SyncReport is the sync line, decoded.
type SyncReport struct {
	Pid int
	// RuntimeNS is how long the runtime's create (or exec) ran, in
	// nanoseconds, for berthd's step trace.
	RuntimeNS int64
	// Error is why create failed; RuntimeFailed says the runtime itself
	// failed (its --log may say more than its stderr) rather than the
	// monitor's setup.
	Error         string
	RuntimeFailed bool
}

func (r SyncReport) encode() []byte {
	switch {
	case r.Error != "" && r.RuntimeFailed:
		return append(strconv.AppendQuote([]byte(syncRuntimeError+" "), r.Error), '\n')
	case r.Error != "":
		return append(strconv.AppendQuote([]byte(syncError+" "), r.Error), '\n')
	default:
		b := strconv.AppendInt([]byte(syncPid+" "), int64(r.Pid), 10)
		b = strconv.AppendInt(append(b, ' '), r.RuntimeNS, 10)
		return append(b, '\n')
	}
}

// ParseSyncReport reads the sync line.
func ParseSyncReport(line string) (SyncReport, error) {
	key, val, _ := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
	var r SyncReport
	var err error
	switch key {
	case syncPid:
		pid, ns, _ := strings.Cut(val, " ")
		if ns != "" {
			r.RuntimeNS, err = strconv.ParseInt(ns, 10, 64)
		}
		if err == nil {
			r.Pid, err = strconv.Atoi(pid)
		}
		if err == nil && r.Pid <= 0 {
			err = errors.New("not a pid")
		}
	case syncRuntimeError, syncError:
		r.Error, err = strconv.Unquote(val)
		r.RuntimeFailed = key == syncRuntimeError
		if err == nil && r.Error == "" {
			r.Error = "(no message)"
		}
	default:
		err = errors.New("unknown report")
	}
	if err != nil {
		return SyncReport{}, errors.New("monitor sync report " + strconv.Quote(line) + ": " + err.Error())
	}
	return r, nil
}
