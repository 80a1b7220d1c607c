// Package atomicfile replaces files so that a crash at any moment leaves
// either the old content or the new, never a mix. Every record berthd and
// berth-monitor keep on disk (pods, containers, exit files) is written
// through it. It imports only os, path/filepath and syscall (errors are
// *os.PathError, not fmt's), so berth-monitor can use it without growing.
package atomicfile

import (
	"os"
	"path/filepath"
	"syscall"
)

// WriteFile writes data to a temporary file beside path, fsyncs it, renames
// it over path and fsyncs the directory, so the rename itself is durable.
// On error the temporary file is removed and path is untouched.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, true)
}

// WriteFileNoSync is WriteFile without the fsyncs: a crash of the
// process at any moment leaves the old content or the new, but a crash of
// the machine may lose the change. It is for files whose loss a reboot makes moot:
// what they describe lives in memory (namespaces, cgroups, processes) and
// is gone after a reboot too. Two fsyncs cost milliseconds on a busy disk.
func WriteFileNoSync(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, false)
}

func write(path string, data []byte, perm os.FileMode, durable bool) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return &os.PathError{Op: "write", Path: path, Err: err}
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return &os.PathError{Op: "write", Path: path, Err: err}
	}
	if err := f.Chmod(perm); err != nil {
		return &os.PathError{Op: "write", Path: path, Err: err}
	}
	if durable {
		if err := f.Sync(); err != nil {
			return &os.PathError{Op: "fsync", Path: path, Err: err}
		}
	}
	if err := f.Close(); err != nil {
		return &os.PathError{Op: "write", Path: path, Err: err}
	}
	// syscall.Rename, not os.Rename: os.Rename's Lstat links
	// os.FileInfo, whose time.Time brings time's formatting and zone
	// loading into berth-monitor. rename(2) refuses to replace a directory
	// by itself (EISDIR).
	if err := syscall.Rename(tmp, path); err != nil {
		return &os.LinkError{Op: "rename", Old: tmp, New: path, Err: err}
	}
	ok = true
	if !durable {
		return nil
	}
	return SyncDir(dir)
}

// SyncDir makes a rename or removal in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return &os.PathError{Op: "fsync", Path: dir, Err: err}
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return &os.PathError{Op: "fsync", Path: dir, Err: err}
	}
	return nil
}
