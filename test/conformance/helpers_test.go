package conformance

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// statusField returns a "Name:\tvalue" field of a /proc/*/status text.
func statusField(status, name string) (string, bool) {
	for _, line := range strings.Split(status, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == name {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

func mustField(t *testing.T, status, name string) string {
	t.Helper()
	v, ok := statusField(status, name)
	if !ok {
		t.Fatalf("no %s in:\n%s", name, status)
	}
	return v
}

func parseHex(t *testing.T, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(strings.TrimSpace(s), 16, 64)
	if err != nil {
		t.Fatalf("not hex: %q", s)
	}
	return v
}

// Capability numbers (linux/capability.h) of the names used here.
var capNumbers = map[string]uint{
	"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3, "CAP_FSETID": 4,
	"CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8, "CAP_LINUX_IMMUTABLE": 9,
	"CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11, "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13,
	"CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15, "CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17,
	"CAP_SYS_CHROOT": 18, "CAP_SYS_PTRACE": 19, "CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21,
	"CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23, "CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25,
	"CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27, "CAP_LEASE": 28, "CAP_AUDIT_WRITE": 29,
	"CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31, "CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33,
	"CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35, "CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37,
	"CAP_PERFMON": 38, "CAP_BPF": 39, "CAP_CHECKPOINT_RESTORE": 40,
}

func capMask(names ...string) uint64 {
	var m uint64
	for _, n := range names {
		m |= 1 << capNumbers[n]
	}
	return m
}

// capNames lists the known capabilities in mask.
func capNames(mask uint64) []string {
	var names []string
	for n, bit := range capNumbers {
		if mask&(1<<bit) != 0 {
			names = append(names, n)
		}
	}
	return names
}

// mountInfo is one line of /proc/self/mountinfo.
type mountInfo struct {
	mountPoint, options, optional, fsType, source, superOptions string
}

func parseMountInfo(text string) map[string]mountInfo {
	m := map[string]mountInfo{}
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 10 {
			continue
		}
		sep := 6
		for sep < len(f) && f[sep] != "-" {
			sep++
		}
		if sep+3 >= len(f) {
			continue
		}
		m[f[4]] = mountInfo{mountPoint: f[4], options: f[5], optional: strings.Join(f[6:sep], " "),
			fsType: f[sep+1], source: f[sep+2], superOptions: f[sep+3]}
	}
	return m
}

func hasOpt(opts string, want ...string) bool {
	set := map[string]bool{}
	for _, o := range strings.Split(opts, ",") {
		set[o] = true
	}
	for _, w := range want {
		if !set[w] {
			return false
		}
	}
	return true
}

func matches(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }

func atoi(s string) int {
	n, _ := strconv.Atoi(strings.TrimSpace(s))
	return n
}

func itoa(n int) string { return strconv.Itoa(n) }

func isCgroupV1() bool {
	var st unix.Statfs_t
	return unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type != unix.CGROUP2_SUPER_MAGIC
}

func freezerPath(c *container) string {
	return "/sys/fs/cgroup/freezer/" + cgroupBase + "/" + c.id + "/freezer.state"
}
