package server

import (
	"fmt"

	"github.com/opencontainers/cgroups/systemd"
	"github.com/sirupsen/logrus"

	"github.com/berth-cri/berth/cgroupdriver"
	"github.com/berth-cri/berth/config"
)

// cgroupChoice is the cgroup driver new pods get and the parent of those
// whose request names none, decided once at start (the config's
// runtime.cgroup_driver, else the node; see cgroupdriver.Resolve).
type cgroupChoice struct {
	Driver cgroupdriver.Driver `json:"driver"`
	// Why names the rule that chose it, for the log and Status.
	Why    string `json:"why"`
	Parent string `json:"parent"`
}

// chooseCgroups resolves the driver, checks the configured parent is in
// its form and records it in the root, so a later start keeps it while
// pods made with it exist.
func chooseCgroups(cfg *config.Config) (cgroupChoice, error) {
	configured, err := cgroupdriver.Parse(cfg.Runtime.CgroupDriver)
	if err != nil {
		return cgroupChoice{}, err
	}
	node, err := cgroupdriver.Detect(cfg.Root)
	if err != nil {
		return cgroupChoice{}, fmt.Errorf("cgroup driver: %w", err)
	}
	c := cgroupChoice{Parent: cfg.Runtime.CgroupParent}
	c.Driver, c.Why = cgroupdriver.Resolve(configured, node)
	if c.Driver == cgroupdriver.Systemd && !systemd.IsRunningSystemd() {
		return c, fmt.Errorf("cgroup driver systemd (%s): systemd is not running as PID 1 here (no /run/systemd/system)", c.Why)
	}
	if c.Parent == "" {
		c.Parent = c.Driver.DefaultParent()
	} else if err := c.Driver.ValidateParent(c.Parent); err != nil {
		return c, fmt.Errorf("key runtime.cgroup_parent: %w (driver %s: %s); set runtime.cgroup_driver or cgroup_parent to agree", err, c.Driver, c.Why)
	}
	if err := cgroupdriver.Record(cfg.Root, c.Driver); err != nil {
		return c, fmt.Errorf("cgroup driver: record: %w", err)
	}
	logrus.Infof("cgroup driver %s (%s); pods that name no cgroup_parent go under %s", c.Driver, c.Why, c.Parent)
	return c, nil
}
