package main

import (
	"path/filepath"
	"time"

	"github.com/berth-cri/berth/config"
	"github.com/berth-cri/berth/test/launch"
	"github.com/berth-cri/berth/test/testimage"
)

// network is critest's own, named not to collide with contrib's
// berth0/10.87.0.0/16 nor with the e2e tests and other lanes running on
// the same machine.
var network = launch.Network{Name: "berthct", Bridge: "berthct0", Subnet: "10.89.0.0/16"}

// newDaemon prepares berthd for critest: every upstream registry
// rewritten to reg (Registry.StandIn), and NRI on a private socket.
func newDaemon(o options, reg *testimage.Registry) (*launch.Daemon, error) {
	return launch.New(launch.Options{
		BinDir:         o.bindir,
		Log:            filepath.Join(o.build, "berthd.log"),
		Prefix:         "berthct",
		Network:        network,
		DefaultRuntime: o.runtime,
		CgroupDriver:   o.cgroupDriver,
		Debug:          o.debug,
		Registries:     reg.StandIn(upstreams),
		Configure:      configure,
	})
}

// configure turns NRI on with no pre-installed plugins: critest's NRI
// specs connect their own plugin to the socket (-nri-socket). Its
// synchronization specs hold a plugin's Synchronize open for 2s, the
// default request timeout, after which a plugin is disconnected; so the
// timeout is above that. critest's user namespace specs map node ids
// from 1000: below the default floor (65536), kept for nodes.
func configure(c *config.Config, d *launch.Daemon) {
	c.Pod.UsernsMinHostID = 1000
	c.NRI.Enable = true
	c.NRI.SocketPath = nriSocket(d)
	c.NRI.PluginPath = d.Path("nri-plugins")
	c.NRI.PluginConfigPath = d.Path("nri-conf")
	c.NRI.RequestTimeout = config.Duration{Duration: 10 * time.Second}
}

func nriSocket(d *launch.Daemon) string { return d.Path("nri.sock") }
