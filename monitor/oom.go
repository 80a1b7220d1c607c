package monitor

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// OOM detection reads the kernel's per-cgroup OOM-kill counter before the
// container runs and after its init exits: cgroup v1's memory.oom_control
// "oom_kill" line (kernel 4.13+) or cgroup v2's memory.events "oom_kill".
// A counter cannot miss a kill the way a racy eventfd listener can, and it
// counts a kill of any process of the container, which is what kubelet's
// OOMKilled reason means. opencontainers/cgroups has this, but linking it
// (and its dependencies) would double the monitor's size for two file
// reads, so the monitor reads the files itself.

// oomCounter is an open counter file of one memory cgroup. It is opened at
// start so the count can still be read if the cgroup is removed first.
//
// That is not always enough: a systemd scope (the systemd cgroup driver)
// is removed by systemd as soon as its last process exits, and a removed
// cgroup's open files read ENODEV. So the counter is also watched: the
// kernel notifies a change of memory.events (inotify IN_MODIFY), and the
// value read then, while the cgroup still exists, is kept for the end.
//
// The notification can come too late as well: the kernel sends at most one
// per cgroup file every 10 ms, and on a slow node systemd has seen the
// scope empty and removed it before the watcher reads. So on cgroup v2 the
// parent's memory.events (the pod's slice, which berthd removes, not
// systemd) is opened too: its oom_kill counts the kills of every cgroup
// below it. When the container's own count is lost, a rise in the parent's
// while the container ran, with the init killed by SIGKILL (what the OOM
// killer sends), is its OOM kill. A sibling killed by OOM at the same time
// as this init is SIGKILLed by something else would be misread as this
// container's; that needs both races at once, and is said here.
type oomCounter struct {
	f *os.File
	// seen is the largest count read on a change notification.
	seen   atomic.Uint64
	notify *os.File // the inotify descriptor, nil when not watched
	// parent is the parent cgroup's memory.events (v2 only, nil without
	// one), and parentBefore its count when the counter was opened.
	parent       *os.File
	parentBefore uint64
}

// watch reads the counter on every change the kernel notifies, until
// close. The inotify descriptor is non-blocking, so its reads wait in the
// runtime's poller and hold no thread. Without inotify, or on cgroup v1
// (whose memory.oom_control notifies no change: a v1 scope systemd removes
// early still loses its count), only the final read counts.
func (c *oomCounter) watch() {
	if filepath.Base(c.f.Name()) != "memory.events" {
		return // v1's memory.oom_control notifies nothing
	}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return
	}
	if _, err := unix.InotifyAddWatch(fd, c.f.Name(), unix.IN_MODIFY); err != nil {
		unix.Close(fd)
		return
	}
	c.notify = os.NewFile(uintptr(fd), "inotify")
	go func(n *os.File) {
		buf := make([]byte, 4096)
		for {
			if _, err := n.Read(buf); err != nil {
				return // closed
			}
			if v, err := c.read(); err == nil && v > c.seen.Load() {
				c.seen.Store(v)
			}
		}
	}(c.notify)
}

// openOOMCounter opens the OOM counter of the memory cgroup directory dir.
func openOOMCounter(dir string) (*oomCounter, error) {
	for _, name := range []string{"memory.oom_control", "memory.events"} {
		f, err := os.Open(filepath.Join(dir, name))
		if err == nil {
			c := &oomCounter{f: f}
			if name == "memory.events" {
				c.openParent(filepath.Dir(dir))
			}
			return c, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, wrap(err, "open oom counter")
		}
	}
	return nil, wrap(os.ErrNotExist, "no memory.oom_control or memory.events in ", dir)
}

// openParent opens the parent cgroup's memory.events and reads its count;
// without it (the root cgroup has none) the fallback is off.
func (c *oomCounter) openParent(dir string) {
	f, err := os.Open(filepath.Join(dir, "memory.events"))
	if err != nil {
		return
	}
	n, err := readOOMKills(f)
	if err != nil {
		f.Close()
		return
	}
	c.parent, c.parentBefore = f, n
}

// killed says whether the container was OOM-killed since its count was
// before: from its own counter while it can be read or a change was seen,
// else from the parent's (see oomCounter) when the init died of SIGKILL.
func (c *oomCounter) killed(before uint64, sigkill bool) (bool, error) {
	n, err := c.read()
	if err == nil {
		return max(n, c.seen.Load()) > before, nil
	}
	if c.seen.Load() > before {
		return true, nil
	}
	if !sigkill || c.parent == nil {
		return false, err
	}
	pn, perr := readOOMKills(c.parent)
	if perr != nil {
		return false, err
	}
	return pn > c.parentBefore, nil
}

// kills reads the counter now; once the cgroup is gone, the last count a
// change notification read, if there was one.
func (c *oomCounter) kills() (uint64, error) {
	n, err := c.read()
	if err != nil {
		if seen := c.seen.Load(); seen > 0 {
			return seen, nil
		}
		return 0, err
	}
	return max(n, c.seen.Load()), nil
}

func (c *oomCounter) read() (uint64, error) { return readOOMKills(c.f) }

// readOOMKills reads the oom_kill count of an open counter file.
func readOOMKills(f *os.File) (uint64, error) {
	b := make([]byte, 4096)
	n, err := f.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, wrap(err, "read ", f.Name())
	}
	return parseOOMKills(b[:n])
}

func (c *oomCounter) close() {
	if c.notify != nil {
		c.notify.Close()
	}
	if c.parent != nil {
		c.parent.Close()
	}
	c.f.Close()
}

// parseOOMKills finds "oom_kill N" in memory.oom_control (v1) or
// memory.events (v2); both are "key value" lines.
func parseOOMKills(b []byte) (uint64, error) {
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, " ")
		if ok && k == "oom_kill" {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, errors.New("bad oom_kill value " + strconv.Quote(v))
			}
			return n, nil
		}
	}
	return 0, errors.New("no oom_kill counter (kernel older than 4.13?)")
}

// memoryCgroupDir finds the memory cgroup directory of pid: the v1 memory
// hierarchy when there is one (hybrid hosts keep memory on v1), else the
// unified hierarchy.
func memoryCgroupDir(pid int) (string, error) {
	cg, err := readFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return "", wrap(err, "read cgroups of ", strconv.Itoa(pid))
	}
	mi, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", wrap(err, "read mountinfo")
	}
	defer mi.Close()
	return findMemoryCgroup(cg, mi)
}

// findMemoryCgroup does memoryCgroupDir's work on the contents of
// /proc/<pid>/cgroup and a reader of /proc/self/mountinfo. The mount
// table is read a line at a time and only cgroup mounts are parsed: a
// node's table has a line per pod namespace, /dev/shm and container
// root filesystem (hundreds, overlay lines kilobytes long), and reading
// it whole, as this did before, left a few hundred KiB of garbage in
// every monitor, which never collects.
func findMemoryCgroup(procCgroup []byte, mountinfo io.Reader) (string, error) {
	var v1Path, v2Path string
	haveV1, haveV2 := false, false
	for _, line := range strings.Split(string(procCgroup), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2Path, haveV2 = parts[2], true
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" {
				v1Path, haveV1 = parts[2], true
			}
		}
	}
	var found string
	var foundErr error
	err := eachLine(mountinfo, func(raw []byte) bool {
		// id parent maj:min root mountpoint opts [optional...] - fstype source superopts
		sep := bytes.Index(raw, []byte(" - "))
		if sep < 0 {
			return true
		}
		post := raw[sep+3:]
		if !bytes.HasPrefix(post, []byte("cgroup ")) && !bytes.HasPrefix(post, []byte("cgroup2 ")) {
			return true
		}
		f, g := strings.Fields(string(raw[:sep])), strings.Fields(string(post))
		if len(f) < 5 || len(g) < 3 {
			return true
		}
		root, mnt := unescapeMount(f[3]), unescapeMount(f[4])
		switch {
		case haveV1 && g[0] == "cgroup" && hasOption(g[2], "memory"):
			found, foundErr = joinCgroup(mnt, root, v1Path)
			return false
		case !haveV1 && haveV2 && g[0] == "cgroup2":
			found, foundErr = joinCgroup(mnt, root, v2Path)
			return false
		}
		return true
	})
	if err != nil {
		return "", wrap(err, "read mountinfo")
	}
	if found != "" || foundErr != nil {
		return found, foundErr
	}
	return "", wrap(os.ErrNotExist, "no memory cgroup mount found")
}

// joinCgroup maps a cgroup path to a directory under a mount of the
// hierarchy whose root is root.
func joinCgroup(mnt, root, path string) (string, error) {
	rel, err := filepath.Rel(root, path)
	if err != nil || strings.HasPrefix(rel, "..") {
		return "", errors.New("cgroup " + path + " is outside the mount of " + root)
	}
	return filepath.Join(mnt, rel), nil
}

func hasOption(opts, want string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// maxLine bounds one line of a file read by eachLine.
const maxLine = 1 << 20

// eachLine calls fn with each line of r (without its newline) until fn
// returns false, reading through one buffer that grows only for a line
// longer than it. bufio.Scanner does this, but bufio is one of the
// packages the monitor does not link (see monitor's import test).
func eachLine(r io.Reader, fn func(line []byte) bool) error {
	buf := make([]byte, 4096)
	start, end := 0, 0
	eof := false
	for {
		if i := bytes.IndexByte(buf[start:end], '\n'); i >= 0 {
			if !fn(buf[start : start+i]) {
				return nil
			}
			start += i + 1
			continue
		}
		if eof {
			if end > start {
				fn(buf[start:end]) // a last line without a newline
			}
			return nil
		}
		// No whole line left: move the partial one to the front, grow
		// the buffer if it is full, read more.
		end = copy(buf, buf[start:end])
		start = 0
		if end == len(buf) {
			if len(buf) >= maxLine {
				return errors.New("line longer than " + strconv.Itoa(maxLine) + " bytes")
			}
			buf = append(buf, make([]byte, len(buf))...)
		}
		n, err := r.Read(buf[end:])
		end += n
		if errors.Is(err, io.EOF) {
			eof = true
		} else if err != nil {
			return err
		}
	}
}
