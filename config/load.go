package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// Load reads the file at path, then every <path>.d/*.toml drop-in in
// lexical order, each over the result of the last, on top of Default().
// overrides (berthd's flags) are applied last, before derived defaults are
// filled in and the result validated. A missing main file is not an error;
// a file that cannot be parsed, an unknown key or an invalid value is, and
// the error names the file and key.
func Load(path string, overrides ...func(*Config)) (*Config, error) {
	cfg := Default()
	files := []string{}
	if _, err := os.Stat(path); err == nil {
		files = append(files, path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	dropins, err := filepath.Glob(filepath.Join(path+".d", "*.toml"))
	if err != nil {
		return nil, fmt.Errorf("config drop-ins %s.d: %w", path, err)
	}
	sort.Strings(dropins)
	files = append(files, dropins...)

	for _, f := range files {
		if err := decodeFile(f, cfg); err != nil {
			return nil, err
		}
	}
	for _, o := range overrides {
		o(cfg)
	}
	cfg.fillDerived()
	if err := cfg.Validate(); err != nil {
		src := path
		if len(files) > 0 {
			src = strings.Join(files, ", ")
		}
		return nil, fmt.Errorf("config %s: %w", src, err)
	}
	return cfg, nil
}

func decodeFile(path string, cfg *Config) error {
	// Handlers is a map: a drop-in adds or overrides handlers, keeping the
	// others, which is what decoding over the existing map already does.
	md, err := toml.DecodeFile(path, cfg)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			// Type errors do not name the key; the line itself does.
			return fmt.Errorf("config %s: line %d (%s): %s", path, perr.Position.Line, lineOf(path, perr.Position.Line), perr.Message)
		}
		return fmt.Errorf("config %s: %w", path, err)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		keys := make([]string, len(undecoded))
		for i, k := range undecoded {
			keys[i] = k.String()
		}
		return fmt.Errorf("config %s: unknown key %s", path, strings.Join(keys, ", "))
	}
	return nil
}

// fillDerived sets the defaults that depend on other keys.
func (c *Config) fillDerived() {
	if c.Image.GraphRoot == "" {
		c.Image.GraphRoot = filepath.Join(c.Root, "storage")
	}
	if c.Image.RunRoot == "" {
		c.Image.RunRoot = filepath.Join(c.RunRoot, "storage")
	}
	if c.Network.CacheDir == "" {
		c.Network.CacheDir = filepath.Join(c.Root, "cni", "cache")
	}
	c.Runtime.discoverHandlers(lookPathFn)
	for name, h := range c.Runtime.Handlers {
		if h.Type == "" {
			h.Type = "oci"
		}
		if h.Root == "" {
			h.Root = filepath.Join(c.RunRoot, "runtime", name)
		}
		c.Runtime.Handlers[name] = h
	}
}

// Encode writes c as TOML that Load accepts back.
func (c *Config) Encode() ([]byte, error) {
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(c); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Map is c keyed by the TOML names the config file uses (not Go's field
// names), for clients that print the effective config as JSON, such as
// `crictl info`.
func (c *Config) Map() (map[string]any, error) {
	b, err := c.Encode()
	if err != nil {
		return nil, err
	}
	m := map[string]any{}
	if err := toml.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode encoded config: %w", err)
	}
	return m, nil
}

// lineOf returns line n (1-based) of the file, trimmed, for error messages.
func lineOf(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "?"
	}
	lines := strings.Split(string(b), "\n")
	if n < 1 || n > len(lines) {
		return "?"
	}
	return strings.TrimSpace(lines[n-1])
}
