package launch

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/berth-cri/berth/config"
)

// writeFiles writes berth.toml, its drop-in, registries.conf, the CNI
// network and crictl.yaml into the daemon's directory.
func (d *Daemon) writeFiles() error {
	o := d.opts
	for _, dir := range []string{d.CNIConfDir, d.Config + ".d"} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	regConf := ""
	if o.Registries != "" {
		regConf = d.Path("registries.conf")
		if err := os.WriteFile(regConf, []byte(o.Registries), 0o644); err != nil {
			return err
		}
	}
	if o.Network.Name != "" {
		conf := filepath.Join(d.CNIConfDir, "10-"+o.Network.Name+".conflist")
		if err := os.WriteFile(conf, []byte(o.Network.Conflist(d.IPAMDir())), 0o644); err != nil {
			return err
		}
	}
	c, err := d.berthConfig(regConf)
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
	if o.DropIn != "" {
		if err := os.WriteFile(filepath.Join(d.Config+".d", "50-test.toml"), []byte(o.DropIn), 0o644); err != nil {
			return err
		}
	}
	crictl := fmt.Sprintf("runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 60\n", d.Socket, d.Socket)
	return os.WriteFile(d.CrictlConfig(), []byte(crictl), 0o644)
}

// berthConfig is berthd's default config on the daemon's private paths.
func (d *Daemon) berthConfig(regConf string) (*config.Config, error) {
	o := d.opts
	c := config.Default()
	c.Listen = "unix://" + d.Socket
	c.Root, c.RunRoot = d.Root, d.RunRoot
	if o.Debug {
		c.Log.Level = "debug"
	}
	c.Runtime.MonitorPath = filepath.Join(o.BinDir, "berth-monitor")
	c.Runtime.PausePath = filepath.Join(o.BinDir, "berth-pause")
	c.Runtime.CgroupParent = d.CgroupParent
	// Named, never left to berthd's "follow the node": the parent is in
	// the form of the lane's driver (cgroupfs unless it says systemd),
	// and a lane run from a systemd unit would otherwise get systemd.
	c.Runtime.CgroupDriver = d.CgroupDriver
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
	if regConf != "" {
		c.Image.RegistriesConf = regConf
	}
	c.Network.ConfDir = d.CNIConfDir
	// The network is the lane's or the test's own; no pod may land on
	// the built-in bridge berth0, which belongs to whoever runs berthd
	// on this machine.
	c.Network.FallbackConfig = config.FallbackNone
	if o.Configure != nil {
		o.Configure(c, d)
	}
	return c, nil
}

// Conflist is the network's CNI config, its allocations kept in
// ipamDir. portmap's snat makes hostPorts answer on 127.0.0.1 (it turns
// on route_localnet on the bridge).
func (n Network) Conflist(ipamDir string) string {
	if n.Bare {
		return fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": %q,
  "plugins": [
    { "type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false,
      "ipam": { "type": "host-local", "dataDir": %q, "ranges": [[{ "subnet": %q }]], "routes": [{ "dst": "0.0.0.0/0" }] } }
  ]
}
`, n.Name, n.Bridge, ipamDir, n.Subnet)
	}
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
`, n.Name, n.Bridge, ipamDir, n.Subnet)
}

// RemoveBridge deletes the network's bridge, which the CNI bridge plugin
// leaves behind on purpose (other pods may share it).
func (n Network) RemoveBridge() {
	if n.Bridge == "" {
		return
	}
	if _, err := os.Stat(filepath.Join("/sys/class/net", n.Bridge)); err == nil {
		exec.Command("ip", "link", "del", n.Bridge).Run()
	}
}
