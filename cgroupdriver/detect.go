package cgroupdriver

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/cgroups/systemd"

	"github.com/berth-cri/berth/atomicfile"
)

// Node is what Resolve needs to know about the node and berthd; Detect
// reads it, tests make it up.
type Node struct {
	// SystemdInit: PID 1 is systemd (sd_booted: /run/systemd/system).
	SystemdInit bool
	// Unit is the systemd unit berthd runs in ("" when none): its own
	// cgroup's .service, or "(INVOCATION_ID)" when only systemd's
	// environment says so.
	Unit string
	// Recorded is the driver this root was last run with ("" if never).
	Recorded Driver
	// HasPods: the root holds pod records (made by an earlier berthd).
	HasPods bool
}

// recordFile, in berthd's root, is the driver the root's pods were made
// with.
const recordFile = "cgroup-driver"

// Detect reads the node's facts for root (berthd's state directory).
func Detect(root string) (Node, error) {
	n := Node{SystemdInit: systemd.IsRunningSystemd()}
	n.Unit = ownUnit()
	b, err := os.ReadFile(filepath.Join(root, recordFile))
	switch {
	case err == nil:
		if n.Recorded, err = Parse(strings.TrimSpace(string(b))); err != nil {
			return n, fmt.Errorf("%s: %w", filepath.Join(root, recordFile), err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return n, err
	}
	ents, err := os.ReadDir(filepath.Join(root, "pods"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return n, err
	}
	n.HasPods = len(ents) > 0
	return n, nil
}

// ownUnit names the systemd service berthd runs in, from /proc/self/cgroup
// (the unified line, or v1's name=systemd one), else from INVOCATION_ID,
// which systemd sets for every unit it starts.
func ownUnit() string {
	f, err := os.Open("/proc/self/cgroup")
	if err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			parts := strings.SplitN(sc.Text(), ":", 3)
			if len(parts) != 3 || (parts[1] != "" && parts[1] != "name=systemd") {
				continue
			}
			if u := filepath.Base(parts[2]); strings.HasSuffix(u, ".service") {
				return u
			}
		}
	}
	if os.Getenv("INVOCATION_ID") != "" {
		return "(INVOCATION_ID set)"
	}
	return ""
}

// Resolve picks the driver: the configured one when the config names
// one; else, while pods exist in the root, the one they were made with,
// so that a restart never changes it under them; else systemd only where systemd
// is PID 1 and berthd runs in a unit of it (systemd then owns the cgroup
// tree and expects to be asked), cgroupfs otherwise. why says which rule
// decided, for the start-up log and Status.
func Resolve(configured Driver, n Node) (d Driver, why string) {
	switch {
	case configured != "":
		why = "runtime.cgroup_driver in the config"
		if n.Recorded != "" && n.Recorded != configured && n.HasPods {
			why += fmt.Sprintf(" (pods made earlier with %s keep their cgroups)", n.Recorded)
		}
		return configured, why
	case n.HasPods && n.Recorded != "":
		return n.Recorded, "the driver this root's existing pods were made with (" + recordFile + " in the root)"
	case n.HasPods:
		return Cgroupfs, "pods from an earlier berthd, which had only the cgroupfs driver, exist in the root"
	case n.SystemdInit && n.Unit != "":
		return Systemd, "systemd is PID 1 and berthd runs in its unit " + n.Unit
	case n.SystemdInit:
		return Cgroupfs, "systemd is PID 1 but berthd does not run in a systemd unit"
	}
	return Cgroupfs, "PID 1 is not systemd"
}

// Record writes d as the driver of root's pods, for the next Resolve.
func Record(root string, d Driver) error {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(root, recordFile), []byte(string(d)+"\n"), 0o600)
}
