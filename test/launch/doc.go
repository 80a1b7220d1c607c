// Package launch starts a berthd of this tree for the tests and the test
// lanes (test/framework for the e2e tests, critest, node-e2e, the VM
// lane, the bench) and checks what it leaves behind: private roots and
// socket under one temporary directory, a CNI bridge network of the
// lane's own, registries rewritten to a local registry, and on teardown
// the pods and containers berthd still has, then the host's leftovers
// (processes, mounts, veths, IP allocations, cgroups, systemd units).
//
// It is not tied to testing.TB: the lanes are programs (`go run
// ./test/critest`), not tests; test/framework reports through t what
// Shutdown lists. The config is a config.Config from config.Default(),
// changed by the caller and written with Encode, so a key renamed in
// config/ breaks the build here, not a run; a test's own TOML goes in a
// drop-in, read as a node's drop-ins are.
//
// Process is the one start, readiness poll and stop of a CRI server
// (berthd, or the containerd the bench compares with).
//
//	d, err := launch.New(launch.Options{BinDir: "bin", Log: "berthd.log", Network: launch.Network{...}})
//	defer d.Teardown()
//	err = d.Start()
package launch
