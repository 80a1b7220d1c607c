package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// berthd is a large static program (about 35 MB: the image and storage
// libraries, gRPC, protobuf, NRI, CNI), and every package's init touches
// its own stretch of it, so when serving starts nearly all of the
// program's text and read-only data is mapped, though most of it ran
// once. The kernel makes that worse: it reads the program ahead in large
// folios and maps a whole folio on a fault (read_ahead_kb is 8 MB on the
// test machine), so a single touch can map megabytes. These pages are
// clean copies of the file, so the kernel may drop them and fault them
// back at any time; progPages drops them all when berthd goes idle, and
// requests fault back the ones they use, which is what berthd's resident
// size then shows.
//
// Only mappings of berthd's own file that are read-only and, as
// /proc/self/smaps says just before, hold no private copy of a page are
// touched: the relocated GOT (written at start, then made read-only) and
// any page a debugger or uprobe patched must keep their contents, and
// dropping them would lose it.
type progPages struct {
	// exe is the program's path as the kernel names it in
	// /proc/self/maps (the same d_path as the /proc/self/exe link,
	// " (deleted)" included once the file was replaced).
	exe string
}

func newProgPages() (*progPages, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return nil, fmt.Errorf("find own program: %w", err)
	}
	return &progPages{exe: exe}, nil
}

// settle runs once berthd serves: it tells the kernel berthd's code is
// read at random, so later faults bring in the page asked for rather than
// megabytes around it, and pages out what start-up touched, so the
// kernel reads back, page by page, only what requests use.
func (p *progPages) settle() error {
	return p.advise(unix.MADV_RANDOM, unix.MADV_PAGEOUT)
}

// drop unmaps berthd's program pages after a burst of work. They stay
// in the page cache, so the next request that needs one maps it back
// without a read.
func (p *progPages) drop() error {
	return p.advise(unix.MADV_DONTNEED)
}

func (p *progPages) advise(advice ...int) error {
	ranges, err := p.ranges()
	if err != nil {
		return err
	}
	if len(ranges) == 0 {
		return fmt.Errorf("no read-only mapping of %s in /proc/self/smaps: program pages stay mapped", p.exe)
	}
	for _, r := range ranges {
		for _, a := range advice {
			// Raw madvise: these are the program's own pages, not memory
			// Go allocated, so there is no slice to hand unix.Madvise.
			if _, _, e := unix.Syscall(unix.SYS_MADVISE, r.start, r.len, uintptr(a)); e != 0 {
				return fmt.Errorf("madvise %#x+%#x: %w", r.start, r.len, e)
			}
		}
	}
	return nil
}

type memRange struct{ start, len uintptr }

// ranges returns berthd's read-only private mappings of its own file
// that hold no anonymous (copied-on-write) page, from /proc/self/smaps.
func (p *progPages) ranges() ([]memRange, error) {
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return nil, err
	}
	return p.parse(b)
}

// parse reads smaps text.
func (p *progPages) parse(b []byte) ([]memRange, error) {
	var out []memRange
	var cur *memRange // the mapping being read, while it is a candidate
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if first, _, _ := strings.Cut(line, " "); !strings.HasSuffix(first, ":") {
			// A mapping's header: "start-end perms offset dev inode path".
			cur = p.candidate(line)
			continue
		}
		if v, ok := strings.CutPrefix(line, "Anonymous:"); ok && cur != nil {
			if strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")) == "0" {
				out = append(out, *cur)
			}
			cur = nil
		}
	}
	return out, sc.Err()
}

// candidate returns the range of a mapping when its header line is that
// of a read-only private mapping of berthd's own file, else nil.
func (p *progPages) candidate(line string) *memRange {
	// "start-end perms offset dev inode   path"; the path may hold spaces.
	f := strings.Fields(line)
	if len(f) < 6 || f[1] != "r--p" && f[1] != "r-xp" {
		return nil
	}
	if _, path, ok := strings.Cut(line, " /"); !ok || "/"+path != p.exe {
		return nil
	}
	lo, hi, _ := strings.Cut(f[0], "-")
	start, err1 := strconv.ParseUint(lo, 16, 64)
	end, err2 := strconv.ParseUint(hi, 16, 64)
	if err1 != nil || err2 != nil || end <= start {
		return nil
	}
	return &memRange{start: uintptr(start), len: uintptr(end - start)}
}
