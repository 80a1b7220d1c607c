package oci

import (
	"path"
	"strings"
)

// defaultPath is set when neither the image nor the request sets PATH:
// runtimes look the command up in the container's PATH.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// setProcess sets the command line, environment and working directory.
func setProcess(o *SpecOptions, g *Generated) error {
	args, err := commandLine(o.Config.GetCommand(), o.Config.GetArgs(), o.Image)
	if err != nil {
		return err
	}
	p := g.Spec.Process
	p.Args = args

	cwd := o.Config.GetWorkingDir()
	if cwd == "" {
		cwd = o.Image.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	if !path.IsAbs(cwd) {
		return invalidf("working directory %q is not an absolute path", cwd)
	}
	p.Cwd = path.Clean(cwd)

	env := newEnv(o.Image.Env)
	for _, kv := range o.Config.GetEnvs() {
		if kv.GetKey() == "" || strings.ContainsAny(kv.GetKey(), "=\x00") {
			return invalidf("environment variable name %q is empty or holds '=' or NUL", kv.GetKey())
		}
		env.set(kv.GetKey(), string(kv.GetValue()))
	}
	env.setDefault("PATH", strings.TrimPrefix(defaultPath, "PATH="))
	if o.Pod.Hostname != "" {
		env.setDefault("HOSTNAME", o.Pod.Hostname)
	}
	if o.Config.GetTty() {
		env.setDefault("TERM", "xterm")
	}
	p.Env = env.list()
	return nil
}

// commandLine merges the request's command and args with the image's
// entrypoint and cmd as kubelet expects (Docker's rules): a command
// replaces the entrypoint and drops the image's cmd; args alone replace
// the image's cmd and keep its entrypoint.
func commandLine(command, args []string, img ImageConfig) ([]string, error) {
	var out []string
	switch {
	case len(command) > 0:
		out = append(append(out, command...), args...)
	case len(args) > 0:
		out = append(append(out, img.Entrypoint...), args...)
	default:
		out = append(append(out, img.Entrypoint...), img.Cmd...)
	}
	if len(out) == 0 || out[0] == "" {
		return nil, invalidf("no command: the request and the image give neither command nor entrypoint")
	}
	return out, nil
}

// env is an ordered environment: later settings replace a name's value in
// place, so the image's order is kept and request-only names follow.
type env struct {
	names []string
	vals  map[string]string
}

func newEnv(base []string) *env {
	e := &env{vals: map[string]string{}}
	for _, kv := range base {
		name, val, _ := strings.Cut(kv, "=")
		if name != "" {
			e.set(name, val)
		}
	}
	return e
}

func (e *env) set(name, val string) {
	if _, ok := e.vals[name]; !ok {
		e.names = append(e.names, name)
	}
	e.vals[name] = val
}

func (e *env) setDefault(name, val string) {
	if _, ok := e.vals[name]; !ok {
		e.set(name, val)
	}
}

func (e *env) get(name string) (string, bool) {
	v, ok := e.vals[name]
	return v, ok
}

func (e *env) list() []string {
	out := make([]string, 0, len(e.names))
	for _, n := range e.names {
		out = append(out, n+"="+e.vals[n])
	}
	return out
}
