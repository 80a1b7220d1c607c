package storage

import (
	"errors"
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"
)

// emptyTree removes everything below dir, however deep: a container
// shapes its writable layer, and a chain of nested directories deeper
// than the descriptors berthd may open defeats os.RemoveAll (used by
// containers/storage), which holds one per level: the container could not
// be removed. Written here because no library removes such a tree in
// bounded descriptors.
//
// It never descends: each directory directly below dir has its
// subdirectories moved up to dir (renameat, O(1)) and its other entries
// unlinked, then is removed. Every directory is moved at most once, so
// the work is linear in the entries, and two descriptors are open at a
// time. Nothing is followed: entries are opened relative to their
// directory with O_NOFOLLOW.
func emptyTree(dir string) error {
	root, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("empty %s: %w", dir, err)
	}
	defer unix.Close(root)
	moved := 0
	for {
		names, err := readNames(root)
		if err != nil {
			return fmt.Errorf("empty %s: %w", dir, err)
		}
		if len(names) == 0 {
			return nil
		}
		for _, name := range names {
			if err := removeHoisting(root, name, &moved); err != nil {
				return fmt.Errorf("empty %s: %s: %w", dir, name, err)
			}
		}
	}
}

// removeHoisting removes root's entry name; a directory's subdirectories
// are moved up into root first, to be removed in a later pass.
func removeHoisting(root int, name string, moved *int) error {
	var st unix.Stat_t
	if err := unix.Fstatat(root, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return ignoreGone(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return ignoreGone(unix.Unlinkat(root, name, 0))
	}
	d, err := unix.Openat(root, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return ignoreGone(err)
	}
	defer unix.Close(d)
	children, err := readNames(d)
	if err != nil {
		return err
	}
	for _, c := range children {
		var cst unix.Stat_t
		if err := unix.Fstatat(d, c, &cst, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if err := ignoreGone(err); err != nil {
				return err
			}
			continue
		}
		if cst.Mode&unix.S_IFMT != unix.S_IFDIR {
			if err := ignoreGone(unix.Unlinkat(d, c, 0)); err != nil {
				return err
			}
			continue
		}
		for {
			*moved++
			err := hoist(d, c, root, ".berth-removing-"+strconv.Itoa(*moved))
			if !errors.Is(err, unix.EEXIST) && !errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, unix.ENOTDIR) {
				if err := ignoreGone(err); err != nil {
					return err
				}
				break
			}
		}
	}
	return ignoreGone(unix.Unlinkat(root, name, unix.AT_REMOVEDIR))
}

// hoist moves directory name of d to to in root, never over an entry
// that is there; where the filesystem has no RENAME_NOREPLACE, a plain
// rename replaces at most an empty directory (a non-empty one is
// ENOTEMPTY), which goes anyway.
func hoist(d int, name string, root int, to string) error {
	err := unix.Renameat2(d, name, root, to, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		err = unix.Renameat(d, name, root, to)
	}
	return err
}

// readNames lists a directory's entries (not . and ..).
func readNames(fd int) ([]string, error) {
	if _, err := unix.Seek(fd, 0, 0); err != nil {
		return nil, err
	}
	var names []string
	buf := make([]byte, 32<<10)
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

func ignoreGone(err error) error {
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}
