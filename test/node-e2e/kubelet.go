package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// kubeletConfigYAML is the base KubeletConfiguration the suite starts
// its kubelet from (--kubelet-config-file): upstream's
// test/e2e_node/jenkins/default-kubelet-config.yaml, with what this lane
// and a host like CI's need:
//   - failCgroupV1: false, since kubelet 1.35 refuses cgroup v1 hosts
//     unless told (CI's Debian 12 runs a hybrid hierarchy);
//   - oomScoreAdj: 0, since the kubelet cannot lower its own score below
//     the harness's on a host without CAP_SYS_RESOURCE (-999 is its
//     default); the pods' scores are berthd's to clamp
//     (restrict_oom_score_adj, on by default).
//
// cgroupRoot stays "/", as upstream's: the suite's cgroup specs look for
// /kubepods/... whatever the root is. teardown checks what is left below
// /kubepods.
func kubeletConfigYAML() string {
	return `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupRoot: /
failCgroupV1: false
oomScoreAdj: 0
podCIDR: "10.100.0.0/24"
volumeStatsAggPeriod: 10s
fileCheckFrequency: 10s
evictionPressureTransitionPeriod: 30s
evictionHard:
  memory.available: 250Mi
  nodefs.available: 10%
  nodefs.inodesFree: 5%
evictionMinimumReclaim:
  nodefs.available: 5%
  nodefs.inodesFree: 5%
serializeImagePulls: false
`
}

// kubeletFlags come last on the kubelet's command line and win. With no
// systemd the suite sets systemCgroups=/system, which makes the kubelet
// move every process of the root cgroup into /system (the whole host's,
// not only the suite's), and kubelet and runtime cgroups of its own;
// empty values leave the host's processes where they are.
const kubeletFlags = "--system-cgroups= --runtime-cgroups= --kubelet-cgroups="

// hiddenCommands are kept off the PATH the suite sees. With systemd-run
// on the PATH the suite starts its kubelet as a transient systemd unit,
// which needs systemd as PID 1; CI's machines run without it. A real
// node starts its kubelet however it likes; this only decides how the
// suite does.
var hiddenCommands = map[string]bool{"systemd-run": true}

// pathWithout returns a PATH with the same commands in the same order as
// path, minus hidden: each directory of path that holds a hidden
// command is replaced by a directory of links to its other entries,
// under dir. exec.LookPath cannot be told to skip a name any other way.
func pathWithout(dir, path string, hidden map[string]bool) (string, error) {
	os.RemoveAll(dir)
	var out []string
	for i, p := range filepath.SplitList(path) {
		entries, err := os.ReadDir(p)
		if err != nil {
			continue
		}
		has := false
		for _, e := range entries {
			has = has || hidden[e.Name()]
		}
		if !has {
			out = append(out, p)
			continue
		}
		shadow := filepath.Join(dir, fmt.Sprint(i))
		if err := os.MkdirAll(shadow, 0o755); err != nil {
			return "", err
		}
		for _, e := range entries {
			if hidden[e.Name()] {
				continue
			}
			if err := os.Symlink(filepath.Join(p, e.Name()), filepath.Join(shadow, e.Name())); err != nil {
				return "", err
			}
		}
		out = append(out, shadow)
	}
	return strings.Join(out, string(filepath.ListSeparator)), nil
}
