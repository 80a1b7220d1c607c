package config

import (
	"fmt"
	"path/filepath"
	"time"

	validator "github.com/containerd/nri/plugins/default-validator"
)

// NRIConfig is the Node Resource Interface (github.com/containerd/nri):
// plugins that see every pod and container event and may adjust
// containers before they start. The keys are the ones containerd and
// CRI-O use.
type NRIConfig struct {
	// Enable turns NRI on. Off by default: the default socket is shared
	// with any other runtime on the node.
	Enable bool `toml:"enable"`
	// SocketPath is where external plugins connect.
	SocketPath string `toml:"socket_path"`
	// PluginPath holds pre-installed plugins (NN-name executables) that
	// berthd starts itself.
	PluginPath string `toml:"plugin_path"`
	// PluginConfigPath holds the configuration of pre-installed plugins.
	PluginConfigPath string `toml:"plugin_config_path"`
	// RegistrationTimeout bounds a plugin's registration.
	RegistrationTimeout Duration `toml:"registration_timeout"`
	// RequestTimeout bounds each request to a plugin; a plugin that takes
	// longer is disconnected.
	RequestTimeout Duration `toml:"request_timeout"`
	// DefaultValidator is NRI's own validator of plugins' adjustments,
	// with containerd's keys. On by default, refusing what turns a
	// plugin into the node's root: OCI hooks (run by the runtime as the
	// node's root), namespace changes (leaving the pod's user, network
	// or PID namespace) and seccomp changes. A node whose plugins need one
	// of these sets its reject_* key to false; required_plugins names
	// plugins without which no container is created.
	DefaultValidator validator.DefaultValidatorConfig `toml:"default_validator"`
}

func defaultNRI() NRIConfig {
	return NRIConfig{
		SocketPath:          "/var/run/nri/nri.sock",
		PluginPath:          "/opt/nri/plugins",
		PluginConfigPath:    "/etc/nri/conf.d",
		RegistrationTimeout: Duration{5 * time.Second},
		RequestTimeout:      Duration{2 * time.Second},
		DefaultValidator: validator.DefaultValidatorConfig{
			Enable:                                true,
			RejectOCIHookAdjustment:               true,
			RejectRuntimeDefaultSeccompAdjustment: true,
			RejectUnconfinedSeccompAdjustment:     true,
			RejectCustomSeccompAdjustment:         true,
			RejectNamespaceAdjustment:             true,
		},
	}
}

func (n *NRIConfig) validate() error {
	for key, p := range map[string]string{
		"socket_path": n.SocketPath, "plugin_path": n.PluginPath, "plugin_config_path": n.PluginConfigPath,
	} {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("key nri.%s: %q is not an absolute path", key, p)
		}
	}
	if n.RegistrationTimeout.Duration <= 0 {
		return fmt.Errorf("key nri.registration_timeout: %s is not positive", n.RegistrationTimeout)
	}
	if n.RequestTimeout.Duration <= 0 {
		return fmt.Errorf("key nri.request_timeout: %s is not positive", n.RequestTimeout)
	}
	return nil
}
