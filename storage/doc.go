// Package storage holds Berth's images and container root filesystems in
// one go.podman.io/storage store, and pulls images into it with
// go.podman.io/image (the libraries CRI-O and Podman use).
//
// A Store is opened from berth.toml settings alone (no storage.conf is
// read): overlay by default, vfs with a warning where overlay cannot
// mount. It answers the CRI ImageService's questions (Pull, List,
// ResolveImage, Remove, FsInfo) and gives the container code root
// filesystems (CreateContainerRootfs, MountContainerRootfs, ...).
//
// Errors carry errdefs kinds: a malformed reference is Invalid, an image
// the registry does not have is NotFound, bad credentials are
// Unauthenticated, an unreachable registry is Unavailable, a blocked
// registry or a signature policy refusal is PermissionDenied, an image in
// use by a container is FailedPrecondition.
//
// Programs that use a Store must call reexec.Init (go.podman.io/storage/pkg/reexec)
// first thing in main: the overlay driver re-executes the program to
// mount layer stacks whose options exceed a page.
package storage
