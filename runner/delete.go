package runner

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"
)

var deleteCommand = &command{
	name:     "delete",
	usage:    "delete any resources held by the container often used with detached container",
	argsHelp: "<container-id>",
	flags: []flagDef{
		flagB("force,f", "Forcibly deletes the container if it is still running (uses SIGKILL)"),
	},
	minArgs: 1,
	maxArgs: 1,
	run: func(inv *invocation) error {
		id := inv.args[0]
		force := inv.flags.Bool("force")
		c, err := loadContainer(inv)
		if err != nil {
			if errors.Is(err, libcontainer.ErrNotExist) {
				// An aborted create can leave a state directory without
				// state.json, which Load does not see; an aborted restore
				// also its bind mount of the root filesystem there
				// (libcontainer's criu-root), which RemoveAll cannot
				// remove and would descend into.
				path := filepath.Join(inv.Root(), id)
				if e := unmountBeneath(path); e != nil {
					fmt.Fprintf(inv.app.Stderr, "unmount beneath %s: %v\n", path, e)
				} else if e := os.RemoveAll(path); e != nil {
					fmt.Fprintf(inv.app.Stderr, "remove %s: %v\n", path, e)
				}
				if force {
					return nil
				}
			}
			return err
		}
		// With --force, kill and destroy even a stopped container: without
		// its own PID namespace, processes may be left in its cgroup.
		if force {
			return killContainer(c)
		}
		s, err := c.Status()
		if err != nil {
			return err
		}
		switch s {
		case libcontainer.Stopped:
			return c.Destroy()
		case libcontainer.Created:
			return killContainer(c)
		default:
			return fmt.Errorf("cannot delete container %s that is not stopped: %s", id, s)
		}
	},
}

// unmountBeneath detaches every mount at or below dir, deepest first.
func unmountBeneath(dir string) error {
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return err
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].Mountpoint) > len(mounts[j].Mountpoint) })
	for _, m := range mounts {
		if err := unix.Unmount(m.Mountpoint, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("unmount %s: %w", m.Mountpoint, err)
		}
	}
	return nil
}

// killContainer sends SIGKILL and destroys the container once its init is
// gone. runc sleeps 100ms before its first look; we look after 1ms and back
// off, so deleting a created container costs a millisecond, not a tenth of
// a second. The overall limit is runc's: 10 seconds.
func killContainer(c *libcontainer.Container) error {
	_ = c.Signal(unix.SIGKILL)
	deadline := time.Now().Add(10 * time.Second)
	for wait := time.Millisecond; time.Now().Before(deadline); wait = min(2*wait, 100*time.Millisecond) {
		time.Sleep(wait)
		if err := c.Signal(unix.Signal(0)); err != nil {
			return c.Destroy()
		}
	}
	return errors.New("container init still running")
}
