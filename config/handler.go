package config

import (
	"os/exec"
	"sort"
	"strings"

	"github.com/berth-cri/berth/errdefs"
)

// Handler resolves a CRI runtime handler name ("" means the default) to its
// name and settings. An unknown name is an Invalid error listing the
// configured ones, as kubelet passes it through from a RuntimeClass.
func (r *RuntimeConfig) Handler(name string) (string, RuntimeHandler, error) {
	if name == "" {
		name = r.Default
	}
	h, ok := r.Handlers[name]
	if !ok {
		names := make([]string, 0, len(r.Handlers))
		for n := range r.Handlers {
			names = append(names, n)
		}
		sort.Strings(names)
		return "", RuntimeHandler{}, errdefs.Invalidf("runtime handler %q is not configured (configured: %s)", name, strings.Join(names, ", "))
	}
	return name, h, nil
}

// WellKnownRuntimes are the OCI runtimes berthd offers as handlers of
// their own name when they are installed (runtime.discover_handlers), as
// CRI-O's default configuration lists them, so a RuntimeClass naming
// runc or crun works without editing the config.
var WellKnownRuntimes = []string{"runc", "crun"}

// discoverHandlers adds a handler for each well-known runtime found by
// lookPath that the config does not name. The default stays as set.
func (r *RuntimeConfig) discoverHandlers(lookPath func(string) (string, error)) {
	if !r.DiscoverHandlers {
		return
	}
	for _, name := range WellKnownRuntimes {
		if _, ok := r.Handlers[name]; ok {
			continue
		}
		path, err := lookPath(name)
		if err != nil {
			continue
		}
		if r.Handlers == nil {
			r.Handlers = map[string]RuntimeHandler{}
		}
		r.Handlers[name] = RuntimeHandler{Path: path, Discovered: true}
	}
}

// lookPathFn is exec.LookPath; tests replace it.
var lookPathFn = exec.LookPath
