package sandbox

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// mountShm mounts the pod's /dev/shm: a tmpfs of size bytes that the pod's
// containers share, so POSIX shared memory works across them and counts
// against nobody else.
func mountShm(path string, size int64, userns *userNS) error {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return fmt.Errorf("pod shm: %w", err)
	}
	opts := "mode=1777,size=" + strconv.FormatInt(size, 10) + userns.tmpfsOwner()
	if err := unix.Mount("shm", path, "tmpfs", unix.MS_NOEXEC|unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("pod shm: mount tmpfs on %s: %w", path, err)
	}
	return nil
}

// unmountShm unmounts the pod's shm (detached: a container that still has
// it open keeps its own reference) and removes the mount point. Nothing
// there is not an error.
func unmountShm(path string) error {
	if err := unmountAndRemove(path); err != nil {
		return fmt.Errorf("pod shm %s: %w", path, err)
	}
	return nil
}
