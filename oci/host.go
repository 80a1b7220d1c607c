package oci

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/sys/capability"
	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/selinux/go-selinux"
)

// Host is what spec generation needs to know about the node and about
// berthd itself. It is read once at start: none of it changes while
// berthd runs.
type Host struct {
	// Capabilities is berthd's bounding set ("CAP_CHOWN", ...): what a
	// privileged container gets. A root without CAP_SYS_RESOURCE cannot
	// hand it out.
	Capabilities []string
	// MinOOMScoreAdj is berthd's own oom_score_adj when requests below it
	// are clamped (runtime.restrict_oom_score_adj), else nil.
	MinOOMScoreAdj *int
	// AppArmor and SELinux report whether the kernel enforces them.
	AppArmor bool
	SELinux  bool
	// CgroupV2 is a unified (v2-only) cgroup hierarchy.
	CgroupV2 bool
	// Hugetlb and MemorySwap report whether the hugetlb controller and
	// memory+swap accounting exist, so limits nobody can apply are
	// refused or dropped instead of failing inside the runtime.
	Hugetlb    bool
	MemorySwap bool
	// SeccompDefaultWhenEmpty gives containers that name no seccomp
	// profile RuntimeDefault instead of the CRI's unconfined
	// (runtime.seccomp_use_default_when_empty).
	SeccompDefaultWhenEmpty bool
}

// DetectHost reads the node's and berthd's facts.
func DetectHost(restrictOOMScoreAdj bool) (*Host, error) {
	h := &Host{
		SELinux:  selinux.GetEnabled(),
		AppArmor: appArmorEnabled(),
		CgroupV2: cgroups.IsCgroup2UnifiedMode(),
	}
	caps, err := boundingCapabilities()
	if err != nil {
		return nil, err
	}
	h.Capabilities = caps
	if restrictOOMScoreAdj {
		b, err := os.ReadFile("/proc/self/oom_score_adj")
		if err != nil {
			return nil, fmt.Errorf("read own oom_score_adj: %w", err)
		}
		v, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, fmt.Errorf("parse own oom_score_adj %q: %w", b, err)
		}
		h.MinOOMScoreAdj = &v
	}
	if h.CgroupV2 {
		ctrl, _ := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
		h.Hugetlb = strings.Contains(string(ctrl), "hugetlb")
		// The root has no memory.swap.* files: look in a child (systemd's
		// init.scope and system.slice, or berthd's own cgroup elsewhere).
		h.MemorySwap = fileExists("/sys/fs/cgroup/init.scope/memory.swap.max") || fileExists("/sys/fs/cgroup/system.slice/memory.swap.max") ||
			fileExists(filepath.Join("/sys/fs/cgroup", ownCgroup2(), "memory.swap.max"))
	} else {
		if mnt, err := cgroups.FindCgroupMountpoint("", "hugetlb"); err == nil && mnt != "" {
			h.Hugetlb = true
		}
		if mnt, err := cgroups.FindCgroupMountpoint("", "memory"); err == nil {
			h.MemorySwap = fileExists(filepath.Join(mnt, "memory.memsw.limit_in_bytes"))
		}
	}
	return h, nil
}

// ownCgroup2 is berthd's cgroup v2 path ("/" when unknown).
func ownCgroup2() string {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "/"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok && p != "" {
			return filepath.Clean(p)
		}
	}
	return "/"
}

// boundingCapabilities lists the capabilities in berthd's bounding set.
func boundingCapabilities() ([]string, error) {
	c, err := capability.NewPid2(0)
	if err != nil {
		return nil, fmt.Errorf("read own capabilities: %w", err)
	}
	if err := c.Load(); err != nil {
		return nil, fmt.Errorf("read own capabilities: %w", err)
	}
	var out []string
	for _, cp := range capability.ListKnown() {
		if c.Get(capability.BOUNDING, cp) {
			out = append(out, "CAP_"+strings.ToUpper(cp.String()))
		}
	}
	return out, nil
}

func appArmorEnabled() bool {
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && strings.HasPrefix(string(b), "Y")
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
