package launch

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-cri/berth/config"
)

// writeFiles writes berth.toml, registries.conf, the CNI network and
// crictl.yaml into the daemon's directory.
func (d *Daemon) writeFiles() error {
	o := d.opts
	regConf := d.Path("registries.conf")
	if err := os.WriteFile(regConf, []byte(o.Registries), 0o644); err != nil {
		return err
	}
	cniDir := d.Path("cni")
	if err := os.MkdirAll(cniDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(cniDir, "10-"+o.Network.Name+".conflist"), []byte(d.cniConfig()), 0o644); err != nil {
		return err
	}
	c, err := d.berthConfig(regConf, cniDir)
	if err != nil {
		return err
	}
	b, err := c.Encode()
	if err != nil {
		return err
	}
	if err := os.WriteFile(d.Config, b, 0o644); err != nil {
		return err
	}
	crictl := fmt.Sprintf("runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 60\n", d.Socket, d.Socket)
	return os.WriteFile(d.CrictlConfig(), []byte(crictl), 0o644)
}

// berthConfig is berthd's default config on the daemon's private paths.
func (d *Daemon) berthConfig(regConf, cniDir string) (*config.Config, error) {
	o := d.opts
	c := config.Default()
	c.Listen = "unix://" + d.Socket
	c.Root, c.RunRoot = d.Path("root"), d.Path("run")
	if o.Debug {
		c.Log.Level = "debug"
	}
	c.Runtime.MonitorPath = filepath.Join(o.BinDir, "berth-monitor")
	c.Runtime.PausePath = filepath.Join(o.BinDir, "berth-pause")
	c.Runtime.CgroupParent = d.CgroupParent
	if o.CgroupDriver != "" {
		c.Runtime.CgroupDriver = o.CgroupDriver
	}
	// Handlers are written out, not discovered from PATH, so the lane
	// runs what it names whatever the host's PATH holds.
	c.Runtime.DiscoverHandlers = false
	c.Runtime.Handlers = map[string]config.RuntimeHandler{
		"berth": {Type: "oci", Path: filepath.Join(o.BinDir, "berth-runner")},
	}
	for name, path := range Runtimes {
		if _, err := os.Stat(path); err == nil {
			c.Runtime.Handlers[name] = config.RuntimeHandler{Type: "oci", Path: path}
		}
	}
	if _, ok := c.Runtime.Handlers[o.DefaultRuntime]; !ok {
		return nil, fmt.Errorf("runtime %q: not found on this host (known: berth, runc at %s, crun at %s)",
			o.DefaultRuntime, Runtimes["runc"], Runtimes["crun"])
	}
	c.Runtime.Default = o.DefaultRuntime
	c.Image.RegistriesConf = regConf
	c.Network.ConfDir = cniDir
	// The lane's network is its own; no fallback to a built-in one.
	c.Network.FallbackConfig = config.FallbackNone
	if o.Configure != nil {
		o.Configure(c, d)
	}
	return c, nil
}

// cniConfig is the lane's bridge network. portmap's snat makes hostPorts
// answer on 127.0.0.1 (it turns on route_localnet on the bridge).
func (d *Daemon) cniConfig() string {
	n := d.opts.Network
	return fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": %q,
  "plugins": [
    {
      "type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": true, "hairpinMode": true,
      "ipam": { "type": "host-local", "dataDir": %q, "ranges": [[{ "subnet": %q }]], "routes": [{ "dst": "0.0.0.0/0" }] }
    },
    { "type": "portmap", "capabilities": { "portMappings": true }, "snat": true },
    { "type": "loopback" }
  ]
}
`, n.Name, n.Bridge, d.IPAMDir(), n.Subnet)
}
