// Package framework runs a real berthd for end-to-end tests through
// test/launch, the one launcher of the tests and lanes: it builds the
// binaries once per test process, starts the daemon on private roots and
// socket, hands back connected CRI clients, and when the test ends turns
// launch's leftovers (pods, containers, processes, mounts, cgroups,
// systemd units, a data race) into test errors and prints the daemon's
// log if the test failed.
//
// Typical use, in a package whose TestMain calls framework.Main:
//
//	func TestX(t *testing.T) {
//		d := framework.StartDaemon(t, framework.Options{})
//		v, err := d.Runtime.Version(d.Ctx(t), &runtimeapi.VersionRequest{})
//		...
//	}
package framework
