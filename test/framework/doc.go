// Package framework runs a real berthd for end-to-end tests: it builds the
// binaries once per test process, starts the daemon on private roots and
// socket, hands back connected CRI clients, prints the daemon's log when a
// test fails, and checks on teardown that nothing is left behind (mounts
// under the roots, processes started from them).
//
// Typical use, in a package whose TestMain calls framework.Main:
//
//	func TestX(t *testing.T) {
//		d := framework.StartDaemon(t, framework.Options{})
//		v, err := d.Runtime.Version(d.Ctx(t), &runtimeapi.VersionRequest{})
//		...
//	}
package framework
