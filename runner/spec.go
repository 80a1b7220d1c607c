package runner

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/runc/libcontainer/specconv"
	"github.com/opencontainers/runtime-spec/specs-go"
	selinux "github.com/opencontainers/selinux/go-selinux"
)

const specConfig = "config.json"

var specCommand = &command{
	name:     "spec",
	usage:    "create a new specification file",
	argsHelp: "",
	flags: []flagDef{
		flagS("bundle,b", "", "path to the root of the bundle directory"),
		flagB("rootless", "generate a configuration for a rootless container"),
	},
	maxArgs: 0,
	run: func(inv *invocation) error {
		spec := specconv.Example()
		if inv.flags.Bool("rootless") {
			specconv.ToRootless(spec)
		}
		path := filepath.Join(inv.flags.String("bundle"), specConfig)
		if _, err := os.Stat(path); err == nil {
			return fmt.Errorf("File %s exists. Remove it first", specConfig)
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		data, err := json.MarshalIndent(spec, "", "\t")
		if err != nil {
			return err
		}
		return os.WriteFile(path, data, 0o666)
	},
}

// loadSpec reads and checks a bundle's config.json.
func loadSpec(path string) (*specs.Spec, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("JSON specification file %s not found", specConfig)
		}
		return nil, err
	}
	defer f.Close()
	var spec *specs.Spec
	if err := json.NewDecoder(f).Decode(&spec); err != nil {
		return nil, err
	}
	if spec == nil {
		return nil, errors.New("config cannot be null")
	}
	return spec, validateProcessSpec(spec.Process)
}

// validateProcessSpec refuses what runc refuses, with runc's messages.
func validateProcessSpec(p *specs.Process) error {
	if p == nil {
		return errors.New("process property must not be empty")
	}
	if p.Cwd == "" {
		return errors.New("Cwd property must not be empty")
	}
	if !filepath.IsAbs(p.Cwd) {
		return errors.New("Cwd must be an absolute path")
	}
	if len(p.Args) == 0 {
		return errors.New("args must not be empty")
	}
	if p.SelinuxLabel != "" && !selinux.GetEnabled() {
		return errors.New("selinux label is specified in config, but selinux is disabled or not supported")
	}
	return nil
}
