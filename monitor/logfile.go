package monitor

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// logFileMode is a new log file's mode: kubelet and log agents read these
// files, other users must not.
const logFileMode = 0o640

// openLogFile opens the CRI log at path for appending. The pod's log
// directory dir is trusted (kubelet made it); below it, the monitor, which
// runs as root, follows no symlink and opens nothing but a regular file: a
// container that can write into the directory (a hostPath volume, a log
// agent) could otherwise plant "0.log -> /etc/ld.so.preload" and have its
// output appended to that file. A new file is created with logFileMode; an
// existing one keeps its mode and owner.
//
// The standard library has no openat2 and filepath-securejoin is more than
// the monitor links (stdlib and x/sys only), hence these few lines.
func openLogFile(dir, path string) (*os.File, error) {
	rel, err := filepath.Rel(dir, path)
	if err != nil || !filepath.IsLocal(rel) {
		return nil, errors.New("open container log: " + path + " is not beneath the log directory " + dir)
	}
	dirFd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, wrap(err, "open container log directory ", dir)
	}
	defer unix.Close(dirFd)
	const resolve = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS
	const flags = unix.O_WRONLY | unix.O_APPEND | unix.O_CLOEXEC | unix.O_NOCTTY
	// Create it, if it is not there: a file this call made is regular.
	fd, err := openat2(dirFd, rel, &unix.OpenHow{Flags: flags | unix.O_CREAT | unix.O_EXCL, Mode: logFileMode, Resolve: resolve})
	if err == nil {
		f := os.NewFile(uintptr(fd), path)
		// Whatever the umask.
		if err := f.Chmod(logFileMode); err != nil {
			f.Close()
			return nil, wrap(err, "chmod container log")
		}
		return f, nil
	}
	if !errors.Is(err, unix.EEXIST) {
		return nil, wrap(err, "open container log ", path)
	}
	// It exists: look at what it is before opening it for writing
	// (opening a FIFO blocks, opening a device has effects).
	pathFd, err := openat2(dirFd, rel, &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: resolve})
	if err != nil {
		return nil, wrap(err, "open container log ", path)
	}
	defer unix.Close(pathFd)
	var st unix.Stat_t
	if err := unix.Fstat(pathFd, &st); err != nil {
		return nil, wrap(err, "stat container log ", path)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, errors.New("open container log " + path + ": not a regular file (mode 0" + strconv.FormatUint(uint64(st.Mode), 8) + ")")
	}
	// Reopen that very inode for writing.
	fd, err = unix.Open("/proc/self/fd/"+strconv.Itoa(pathFd), flags, 0)
	if err != nil {
		return nil, wrap(err, "open container log ", path)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// openat2 retries on EINTR and on EAGAIN, which openat2 returns when a
// rename raced the lookup.
func openat2(dirFd int, path string, how *unix.OpenHow) (int, error) {
	for range 16 {
		fd, err := unix.Openat2(dirFd, path, how)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		return fd, err
	}
	return -1, unix.EAGAIN
}
