package config

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/berth-cri/berth/cgroupdriver"
)

var handlerName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// Validate checks every key and names the first bad one.
func (c *Config) Validate() error {
	if !strings.HasPrefix(c.Listen, "unix://") || len(c.Listen) == len("unix://") {
		return fmt.Errorf("key listen: %q is not unix:///path", c.Listen)
	}
	for key, p := range map[string]string{"root": c.Root, "runroot": c.RunRoot} {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("key %s: %q is not an absolute path", key, p)
		}
	}
	if c.Debug.Address != "" && !filepath.IsAbs(c.Debug.Address) {
		return fmt.Errorf("key debug.address: %q is not an absolute path (a unix socket)", c.Debug.Address)
	}
	if _, err := logrus.ParseLevel(c.Log.Level); err != nil {
		return fmt.Errorf("key log.level: %q is not a log level (error, warn, info, debug, trace)", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		return fmt.Errorf("key log.format: %q is not text or json", c.Log.Format)
	}
	if err := c.Runtime.validate(); err != nil {
		return err
	}
	switch c.Image.Driver {
	case "overlay", "vfs":
	default:
		return fmt.Errorf("key image.driver: %q is not overlay or vfs", c.Image.Driver)
	}
	if c.Image.PullRetries < 0 {
		return fmt.Errorf("key image.pull_retries: %d is negative", c.Image.PullRetries)
	}
	if c.Image.PullTimeout.Duration <= 0 {
		return fmt.Errorf("key image.pull_timeout: %s is not positive", c.Image.PullTimeout)
	}
	if c.Network.ConfDir == "" {
		return fmt.Errorf("key network.conf_dir: empty")
	}
	switch f := c.Network.FallbackConfig; {
	case f == FallbackBuiltin, f == FallbackNone, filepath.IsAbs(f):
	default:
		return fmt.Errorf("key network.fallback_config: %q is not %q, %q or an absolute path", f, FallbackBuiltin, FallbackNone)
	}
	if c.Pod.ShmSize <= 0 {
		return fmt.Errorf("key pod.shm_size: %d is not positive", c.Pod.ShmSize)
	}
	if err := c.NRI.validate(); err != nil {
		return err
	}
	if err := c.Stream.validate(); err != nil {
		return err
	}
	if err := c.Memory.validate(); err != nil {
		return err
	}
	return nil
}

func (r *RuntimeConfig) validate() error {
	if len(r.Handlers) == 0 {
		return fmt.Errorf("key runtime.handlers: no runtime handler configured")
	}
	for name, h := range r.Handlers {
		if !handlerName.MatchString(name) {
			return fmt.Errorf("key runtime.handlers.%s: handler names are lowercase letters, digits and '-'", name)
		}
		if h.Type != "oci" && h.Type != "vm" {
			return fmt.Errorf("key runtime.handlers.%s.type: %q is not oci or vm", name, h.Type)
		}
		if h.Path != "" && !filepath.IsAbs(h.Path) {
			return fmt.Errorf("key runtime.handlers.%s.path: %q is not an absolute path", name, h.Path)
		}
		if h.Path == "" && name != "berth" {
			return fmt.Errorf("key runtime.handlers.%s.path: required (only the bundled handler \"berth\" has a default)", name)
		}
		for _, a := range h.AllowedAnnotations {
			if a == "" || a == "*" || strings.ContainsAny(a[:len(a)-1], "*") {
				return fmt.Errorf("key runtime.handlers.%s.allowed_annotations: %q is not a key or a prefix ending in one \"*\" (a lone \"*\" is not allowed)", name, a)
			}
		}
	}
	if _, ok := r.Handlers[r.Default]; !ok {
		return fmt.Errorf("key runtime.default: %q is not a configured handler", r.Default)
	}
	d, err := cgroupdriver.Parse(r.CgroupDriver)
	if err != nil {
		return fmt.Errorf("key runtime.cgroup_driver: %w", err)
	}
	if r.CgroupParent != "" {
		// With the driver left to the node, the form is checked once it
		// is known (at start); either form is fine here.
		check := d
		if check == "" {
			check = cgroupdriver.Of(r.CgroupParent)
		}
		if err := check.ValidateParent(r.CgroupParent); err != nil {
			return fmt.Errorf("key runtime.cgroup_parent: %w", err)
		}
	}
	if r.ExecSyncMaxOutput <= 0 {
		return fmt.Errorf("key runtime.exec_sync_max_output: %d is not positive", r.ExecSyncMaxOutput)
	}
	if r.ExecSyncOutputBudget <= 0 {
		return fmt.Errorf("key runtime.exec_sync_output_budget: %d is not positive", r.ExecSyncOutputBudget)
	}
	return nil
}
