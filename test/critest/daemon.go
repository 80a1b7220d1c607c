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
// rewritten to reg by location (no mirror, so no fallback to the real
// host), and NRI on a private socket.
func newDaemon(o options, reg *testimage.Registry) (*launch.Daemon, error) {
	rewrites := map[string]string{}
	plainHTTP := []string{reg.Host}
	for _, u := range upstreams {
		rewrites[u] = reg.Host + "/" + u
		plainHTTP = append(plainHTTP, rewrites[u])
	}
	return launch.New(launch.Options{
		BinDir:         o.bindir,
		Log:            filepath.Join(o.build, "berthd.log"),
		Prefix:         "berthct",
		Network:        network,
		DefaultRuntime: o.runtime,
		CgroupDriver:   o.cgroupDriver,
		Debug:          o.debug,
		Registries: testimage.RegistriesConf(testimage.ConfOptions{
			Insecure: plainHTTP, Search: []string{"docker.io"}, Rewrites: rewrites,
		}),
		Configure: configureNRI,
	})
}

// configureNRI turns NRI on with no pre-installed plugins: critest's NRI
// specs connect their own plugin to the socket (-nri-socket). Its
// synchronization specs hold a plugin's Synchronize open for 2s, the
// default request timeout, after which a plugin is disconnected; so the
// timeout is above that.
func configureNRI(c *config.Config, d *launch.Daemon) {
	c.NRI.Enable = true
	c.NRI.SocketPath = nriSocket(d)
	c.NRI.PluginPath = d.Path("nri-plugins")
	c.NRI.PluginConfigPath = d.Path("nri-conf")
	c.NRI.RequestTimeout = config.Duration{Duration: 10 * time.Second}
}

func nriSocket(d *launch.Daemon) string { return d.Path("nri.sock") }
