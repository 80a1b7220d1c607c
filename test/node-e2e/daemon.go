package main

import (
	"path/filepath"

	"github.com/berth-cri/berth/test/launch"
	"github.com/berth-cri/berth/test/testimage"
)

// network is the lane's own, named not to collide with contrib's
// berth0/10.87.0.0/16, critest's berthct0/10.89.0.0/16, the bench's
// berthbn0/10.91.0.0/16, nor with the e2e tests running on the same
// machine.
var network = launch.Network{Name: "berthne", Bridge: "berthne0", Subnet: "10.92.0.0/16"}

// newDaemon prepares berthd for the suite: every upstream registry
// rewritten to reg by location (no mirror, so no fallback to the real
// host); otherwise berthd's defaults, as a node would run it.
func newDaemon(o options, reg *testimage.Registry) (*launch.Daemon, error) {
	rewrites := map[string]string{}
	plainHTTP := []string{reg.Host}
	for _, u := range upstreams {
		rewrites[u] = reg.Host + "/" + u
		plainHTTP = append(plainHTTP, rewrites[u])
	}
	return launch.New(launch.Options{
		BinDir:  o.bindir,
		Log:     filepath.Join(o.build, "berthd.log"),
		Prefix:  "berthne",
		Network: network,
		Debug:   o.debug,
		Registries: testimage.RegistriesConf(testimage.ConfOptions{
			Insecure: plainHTTP, Search: []string{"docker.io"}, Rewrites: rewrites,
		}),
	})
}
