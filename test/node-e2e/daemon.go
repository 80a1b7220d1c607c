package main

import (
	"path/filepath"

	"github.com/berth-cri/berth/config"
	"github.com/berth-cri/berth/test/launch"
	"github.com/berth-cri/berth/test/testimage"
)

// network is the lane's own, named not to collide with contrib's
// berth0/10.87.0.0/16, critest's berthct0/10.89.0.0/16, the bench's
// berthbn0/10.91.0.0/16, nor with the e2e tests running on the same
// machine.
var network = launch.Network{Name: "berthne", Bridge: "berthne0", Subnet: "10.92.0.0/16"}

// newDaemon prepares berthd for the suite: every upstream registry
// rewritten to reg (Registry.StandIn) and, given -criu, that CRIU for
// checkpoints (runtime.criu_path: Debian 12's criu 3.17 fails on recent
// kernels, so a node like this one has it built apart); otherwise
// berthd's defaults, as a node would run it.
func newDaemon(o options, reg *testimage.Registry) (*launch.Daemon, error) {
	return launch.New(launch.Options{
		BinDir:     o.bindir,
		Log:        filepath.Join(o.build, "berthd.log"),
		Prefix:     "berthne",
		Network:    network,
		Debug:      o.debug,
		Registries: reg.StandIn(upstreams),
		Configure: func(c *config.Config, _ *launch.Daemon) {
			c.Runtime.CriuPath = o.criu
		},
	})
}
