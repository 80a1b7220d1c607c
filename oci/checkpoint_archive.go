package oci

// Reading a checkpoint archive for a restore. The archive is the caller's
// file and may be hostile: it is read as a stream, entry by entry, and
// only what is plainly safe is written: regular files and directories,
// under names that stay in the staging directory, within bounds. The
// stdlib's archive/tar does the parsing; the checks are Berth's, since
// no library unpacks an untrusted tar with these rules (the store's
// archive package restores links, devices and ownership, which are
// exactly what must be refused here).

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	metadata "github.com/checkpoint-restore/checkpointctl/lib"

	"github.com/berth-cri/berth/errdefs"
)

// Bounds on what a checkpoint archive may hold.
const (
	// maxArchiveEntries bounds the entries (CRIU writes a few dozen
	// images per process; a big container has thousands at most).
	maxArchiveEntries = 100_000
	// maxArchiveBytes bounds the unpacked size: a container's memory and
	// its layer's changes.
	maxArchiveBytes = 64 << 30
	// maxMetadataBytes bounds config.dump, spec.dump and deleted.files,
	// which berthd parses in memory.
	maxMetadataBytes = 4 << 20
)

// checkpointContents is what a restore needs from an unpacked archive.
type checkpointContents struct {
	Config  metadata.ContainerConfig
	Deleted []string
	// HasDiff says rootfs-diff.tar is present.
	HasDiff bool
}

// unpackCheckpoint unpacks the checkpoint src into dir, which must exist
// and be empty, and reads its metadata. Anything wrong with the archive
// is InvalidArgument; what was written to dir is the caller's to remove.
func unpackCheckpoint(src checkpointSource, dir string) (*checkpointContents, error) {
	r, err := src.open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	if err := untarCheckpoint(r, root); err != nil {
		var inv *invalidArchive
		if errors.As(err, &inv) {
			return nil, errdefs.Invalidf("checkpoint %s: %v", src.name, err)
		}
		return nil, fmt.Errorf("unpack checkpoint %s: %w", src.name, err)
	}
	cc, err := readCheckpointContents(root)
	if err != nil {
		return nil, errdefs.Invalidf("checkpoint %s: %v", src.name, err)
	}
	return cc, nil
}

// checkpointSource is what a restore reads: a checkpoint archive the
// caller names by path, or an image made of one (the store's
// CheckpointImage).
type checkpointSource struct {
	// name is the archive's path or the image's reference, for errors
	// and the record.
	name string
	open func() (io.ReadCloser, error)
}

// archiveFile is the checkpoint archive at path src, which must be a
// regular file.
func archiveFile(src string) checkpointSource {
	return checkpointSource{name: src, open: func() (io.ReadCloser, error) {
		f, err := os.Open(src)
		if err != nil {
			return nil, errdefs.Invalidf("checkpoint archive %s: %v", src, err)
		}
		r, err := openedArchive(f, src).open()
		if err != nil {
			f.Close()
		}
		return r, err
	}}
}

// openedArchive is the checkpoint archive already open as f (a pod
// checkpoint's, opened beneath its directory without following links),
// named name in errors; it must be a regular file. Unpacking closes f.
func openedArchive(f *os.File, name string) checkpointSource {
	return checkpointSource{name: name, open: func() (io.ReadCloser, error) {
		if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
			return nil, errdefs.Invalidf("checkpoint archive %s is not a regular file", name)
		}
		return f, nil
	}}
}

// invalidArchive is a fault of the archive, as opposed to the node's.
type invalidArchive struct{ msg string }

func (e *invalidArchive) Error() string { return e.msg }

func archiveInvalidf(format string, a ...any) error {
	return &invalidArchive{fmt.Sprintf(format, a...)}
}

// untarCheckpoint writes r's entries beneath root. Only directories and
// regular files are accepted, under local names (no absolute path, no
// "..", no name twice), within the bounds above. root (os.Root) keeps
// every write inside the directory even if a check here were wrong.
func untarCheckpoint(r io.Reader, root *os.Root) error {
	tr := tar.NewReader(r)
	var total int64
	seen := map[string]bool{}
	for n := 0; ; n++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if n == 0 {
				return archiveInvalidf("empty archive")
			}
			return nil
		}
		if err != nil {
			return archiveInvalidf("not a whole tar archive (truncated or corrupt): %v", err)
		}
		if n >= maxArchiveEntries {
			return archiveInvalidf("more than %d entries", maxArchiveEntries)
		}
		name, err := localName(h.Name)
		if err != nil {
			return err
		}
		if name == "." {
			continue
		}
		if seen[name] {
			return archiveInvalidf("entry %q appears twice", h.Name)
		}
		seen[name] = true
		switch h.Typeflag {
		case tar.TypeDir:
			if err := mkdirIn(root, name); err != nil {
				return err
			}
		case tar.TypeReg:
			if h.Size < 0 || h.Size > maxArchiveBytes-total {
				return archiveInvalidf("entry %q: size %d exceeds the %d-byte bound on the archive", h.Name, h.Size, int64(maxArchiveBytes))
			}
			total += h.Size
			if err := writeEntry(root, name, tr, h.Size); err != nil {
				return err
			}
		default:
			return archiveInvalidf("entry %q is a %s: only files and directories are accepted", h.Name, typeName(h.Typeflag))
		}
	}
}

// localName is an entry's name, cleaned, refused if absolute or leaving
// the archive's directory.
func localName(raw string) (string, error) {
	if raw == "" || strings.ContainsRune(raw, 0) {
		return "", archiveInvalidf("entry with an empty or NUL name")
	}
	if strings.HasPrefix(raw, "/") {
		return "", archiveInvalidf("entry %q has an absolute path", raw)
	}
	for _, part := range strings.Split(raw, "/") {
		if part == ".." {
			return "", archiveInvalidf("entry %q leaves the archive's directory", raw)
		}
	}
	return path.Clean(raw), nil
}

// mkdirIn makes directory name (and its parents) in root.
func mkdirIn(root *os.Root, name string) error {
	if err := root.MkdirAll(name, 0o700); err != nil {
		return archiveInvalidf("directory %q: %v", name, err)
	}
	return nil
}

// writeEntry writes size bytes of r to new file name in root.
func writeEntry(root *os.Root, name string, r io.Reader, size int64) error {
	if dir := path.Dir(name); dir != "." {
		if err := mkdirIn(root, dir); err != nil {
			return err
		}
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return archiveInvalidf("file %q: %v", name, err)
	}
	n, err := io.Copy(f, io.LimitReader(r, size))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || err == nil && n != size {
		return archiveInvalidf("the archive is truncated in file %q (%d of %d bytes)", name, n, size)
	}
	if err != nil {
		return archiveInvalidf("file %q: %v", name, err)
	}
	if n != size {
		return archiveInvalidf("file %q is truncated (%d of %d bytes)", name, n, size)
	}
	return nil
}

func typeName(t byte) string {
	switch t {
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeLink:
		return "hard link"
	case tar.TypeChar, tar.TypeBlock:
		return "device"
	case tar.TypeFifo:
		return "fifo"
	}
	return fmt.Sprintf("tar entry of type %q", t)
}

// readCheckpointContents reads and checks the unpacked archive's
// metadata: config.dump (required, naming the image), spec.dump and the
// CRIU images (required), deleted.files (optional, absolute paths).
func readCheckpointContents(root *os.Root) (*checkpointContents, error) {
	var cc checkpointContents
	if err := readJSONIn(root, metadata.ConfigDumpFile, &cc.Config); err != nil {
		return nil, err
	}
	if cc.Config.RootfsImageRef == "" && cc.Config.RootfsImageName == "" && cc.Config.RootfsImage == "" {
		return nil, errors.New("config.dump names no image")
	}
	var spec json.RawMessage
	if err := readJSONIn(root, metadata.SpecDumpFile, &spec); err != nil {
		return nil, err
	}
	st, err := root.Lstat(path.Join(metadata.CheckpointDirectory, "inventory.img"))
	if err != nil || !st.Mode().IsRegular() {
		return nil, errors.New("no CRIU images (checkpoint/inventory.img)")
	}
	if st, err := root.Lstat(metadata.RootFsDiffTar); err == nil && st.Mode().IsRegular() {
		cc.HasDiff = true
	}
	if _, err := root.Lstat(metadata.DeletedFilesFile); err == nil {
		if err := readJSONIn(root, metadata.DeletedFilesFile, &cc.Deleted); err != nil {
			return nil, err
		}
		for _, p := range cc.Deleted {
			if !path.IsAbs(p) || strings.ContainsRune(p, 0) || path.Clean(p) == "/" {
				return nil, fmt.Errorf("deleted.files: %q is not a path in the container", p)
			}
		}
	}
	return &cc, nil
}

// readJSONIn parses file name in root, bounded by maxMetadataBytes.
func readJSONIn(root *os.Root, name string, v any) error {
	f, err := root.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no %s", name)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMetadataBytes+1))
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if len(b) > maxMetadataBytes {
		return fmt.Errorf("%s is larger than %d bytes", name, maxMetadataBytes)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
