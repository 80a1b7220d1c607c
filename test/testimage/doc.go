// Package testimage builds small OCI images for tests from the host's
// Debian /bin/busybox (package busybox-static) and serves them from an
// in-process registry on 127.0.0.1, so no test ever contacts a public
// registry. It is test-only code: production packages never import it.
//
// Images are made of three layers (busybox and its applet symlinks; users
// and groups in /etc/passwd and /etc/group: root, berth (1000:1000),
// nobody; and a small per-image layer with /etc/berth-image plus any
// Spec.Files), with the config a Spec chooses:
//
//	img, err := testimage.Busybox(testimage.Spec{
//		Name:       "web",                      // makes the image distinct
//		Entrypoint: []string{"/bin/sh", "-c"},
//		Cmd:        []string{"echo hi; sleep 3600"},
//		Env:        []string{"GREETING=hi"},     // PATH is always set
//		User:       "berth",
//		WorkingDir: "/home/berth",
//		StopSignal: "SIGUSR1",
//	})
//
// A registry, stopped when the test ends:
//
//	reg := testimage.StartRegistry(t, testimage.RegistryOptions{})
//	digest, ref := reg.Push(t, "busybox:1.0", img) // ref = "127.0.0.1:PORT/busybox:1.0"
//	...
//	n := reg.BlobGets(layerDigest)   // how many times a blob was fetched
//	reg.SetBlobDelay(5 * time.Second) // each blob now trickles over 5s
//	reg.Stop()                        // the registry is down from now on
//
// RegistryOptions{Username, Password} makes every request need basic
// auth. MultiArch builds an index with linux/amd64 and linux/arm64
// entries (the arm64 image carries the same binary but says arm64 in its
// config and in /etc/berth-image, so a test can tell which one a pull
// chose); PushIndex pushes it. Big builds an image of several layers of
// random bytes, for benchmarks.
//
// containers/image only talks plain HTTP to a registry that a
// registries.conf marks insecure. For a berthd started by the e2e
// framework, reg.DaemonTOML(t) writes one and returns the berth.toml
// lines that use it; WriteRegistriesConf takes ConfOptions for
// unqualified-search registries, docker.io rewrites, blocked registries
// and aliases.
//
// For conformance suites that expect the official busybox image (every
// applet a hard link in /bin, busybox's users), OfficialBusyboxLayer
// lays out a given static busybox that way and Compose puts a Spec's
// layer and config on top of it; SingleIndex wraps an image in a
// one-entry index, as public images are published. NewRegistry starts a
// registry outside a test (test/critest serves critest's images with it).
package testimage
