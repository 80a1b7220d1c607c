package config

import (
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
