// Package launch starts a berthd of this tree for a test lane (critest,
// node-e2e, the VM lane) and checks what it leaves behind: private roots
// and socket under one temporary directory, a CNI bridge network of the
// lane's own, registries rewritten to a local registry, and on teardown
// the pods and containers the suite left, then the host's leftovers
// (processes, mounts, veths, IP allocations, cgroups).
//
// It is not tied to testing.TB: the lanes are programs (`go run
// ./test/critest`), not tests. The config is a config.Config from
// config.Default(), changed by the lane and written with Encode, so a key
// renamed in config/ breaks the build here, not a run.
//
//	d, err := launch.New(launch.Options{BinDir: "bin", Log: "berthd.log", Network: launch.Network{...}})
//	defer d.Teardown()
//	err = d.Start()
package launch
