package runner

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"

	"github.com/docker/go-units"
	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/intelrdt"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
)

var updateCommand = &command{
	name:     "update",
	usage:    "update container resource constraints",
	argsHelp: "<container-id>",
	flags: []flagDef{
		flagS("resources,r", "", "path to the file containing the resources to update or '-' to read from the standard input"),
		flagI("blkio-weight", "Specifies per cgroup weight, range is from 10 to 1000"),
		flagS("cpu-period", "", "CPU CFS period to be used for hardcapping (in usecs). 0 to use system default"),
		flagS("cpu-quota", "", "CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period"),
		flagS("cpu-burst", "", "CPU CFS hardcap burst limit (in usecs)"),
		flagS("cpu-share", "", "CPU shares (relative weight vs. other containers)"),
		flagS("cpu-rt-period", "", "CPU realtime period to be used for hardcapping (in usecs). 0 to use system default"),
		flagS("cpu-rt-runtime", "", "CPU realtime hardcap limit (in usecs). Allowed cpu time in a given period"),
		flagS("cpuset-cpus", "", "CPU(s) to use"),
		flagS("cpuset-mems", "", "Memory node(s) to use"),
		flagS("cpu-idle", "", "set cgroup SCHED_IDLE or not, 0: default behavior, 1: SCHED_IDLE"),
		flagS("kernel-memory", "", "(obsoleted; do not use)"),
		flagS("kernel-memory-tcp", "", "(obsoleted; do not use)"),
		flagS("memory", "", "Memory limit (in bytes)"),
		flagS("memory-reservation", "", "Memory reservation or soft_limit (in bytes)"),
		flagS("memory-swap", "", "Total memory usage (memory + swap); set '-1' to enable unlimited swap"),
		flagI("pids-limit", "Maximum number of pids allowed in the container"),
		flagS("l3-cache-schema", "", "The string of Intel RDT/CAT L3 cache schema"),
		flagS("mem-bw-schema", "", "The string of Intel RDT/MBA memory bandwidth schema"),
	},
	minArgs: 1,
	maxArgs: 1,
	run: func(inv *invocation) error {
		c, err := loadContainer(inv)
		if err != nil {
			return err
		}
		r, err := updateRequest(inv.flags, os.Stdin)
		if err != nil {
			return err
		}
		config := c.Config()
		applyUpdate(&config, r)
		if err := updateIntelRdt(&config, inv.flags.String("l3-cache-schema"), inv.flags.String("mem-bw-schema")); err != nil {
			return err
		}
		return c.Set(config)
	},
}

// updateRequest reads the new resources from --resources (a file or "-"),
// or else from the individual flags.
func updateRequest(fs *flagSet, stdin io.Reader) (*specs.LinuxResources, error) {
	r := &specs.LinuxResources{
		Memory:  &specs.LinuxMemory{CheckBeforeUpdate: ptr(false)},
		CPU:     &specs.LinuxCPU{},
		BlockIO: &specs.LinuxBlockIO{},
		Pids:    &specs.LinuxPids{},
	}
	if in := fs.String("resources"); in != "" {
		src := stdin
		if in != "-" {
			f, err := os.Open(in)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			src = f
		}
		if err := json.NewDecoder(src).Decode(r); err != nil {
			return nil, err
		}
		// A file may leave whole sections out.
		if r.Memory == nil {
			r.Memory = &specs.LinuxMemory{}
		}
		if r.CPU == nil {
			r.CPU = &specs.LinuxCPU{}
		}
		if r.BlockIO == nil {
			r.BlockIO = &specs.LinuxBlockIO{}
		}
		if r.Pids == nil {
			r.Pids = &specs.LinuxPids{}
		}
		return r, nil
	}
	if v := fs.Int("blkio-weight"); v != 0 {
		r.BlockIO.Weight = ptr(uint16(v))
	}
	r.CPU.Cpus = fs.String("cpuset-cpus")
	r.CPU.Mems = fs.String("cpuset-mems")
	if v := fs.String("cpu-idle"); v != "" {
		idle, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("invalid value for cpu-idle: %w", err)
		}
		r.CPU.Idle = &idle
	}
	for opt, dest := range map[string]**uint64{
		"cpu-burst": &r.CPU.Burst, "cpu-period": &r.CPU.Period,
		"cpu-rt-period": &r.CPU.RealtimePeriod, "cpu-share": &r.CPU.Shares,
	} {
		if v := fs.String(opt); v != "" {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("invalid value for %s: %w", opt, err)
			}
			*dest = &n
		}
	}
	for opt, dest := range map[string]**int64{"cpu-quota": &r.CPU.Quota, "cpu-rt-runtime": &r.CPU.RealtimeRuntime} {
		if v := fs.String(opt); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("invalid value for %s: %w", opt, err)
			}
			*dest = &n
		}
	}
	for opt, dest := range map[string]**int64{
		"memory": &r.Memory.Limit, "memory-swap": &r.Memory.Swap,
		"kernel-memory":     &r.Memory.Kernel, //nolint:staticcheck // accepted and ignored, as runc does
		"kernel-memory-tcp": &r.Memory.KernelTCP, "memory-reservation": &r.Memory.Reservation,
	} {
		if v := fs.String(opt); v != "" {
			n := int64(-1)
			if v != "-1" {
				var err error
				if n, err = units.RAMInBytes(v); err != nil {
					return nil, fmt.Errorf("invalid value for %s: %w", opt, err)
				}
			}
			*dest = &n
		}
	}
	if fs.IsSet("pids-limit") {
		r.Pids.Limit = ptr(int64(fs.Int("pids-limit")))
	}
	return r, nil
}

// applyUpdate merges r into the container's cgroup config, with runc's
// rules (so `update` means the same on both runtimes): unchanged values are
// kept, quota and period can be set alone, shares also set the v2 weight,
// and devices are never touched. The cgroup manager (fs for v1, fs2 for v2)
// then writes the files.
func applyUpdate(config *configs.Config, r *specs.LinuxResources) {
	res := config.Cgroups.Resources
	if r.Memory.Limit != nil && *r.Memory.Limit == -1 && r.Memory.Swap == nil {
		r.Memory.Swap = ptr[int64](0) // avoids "unable to set swap limit without memory limit"
	}
	if r.CPU.Idle != nil && r.CPU.Shares == nil {
		r.CPU.Shares = ptr[uint64](0)
	}
	if r.Memory.Kernel != nil || r.Memory.KernelTCP != nil { //nolint:staticcheck // see above
		logrus.Warn("Kernel memory settings are ignored and will be removed")
	}
	if r.BlockIO.Weight != nil {
		res.BlkioWeight = *r.BlockIO.Weight
	}
	if r.BlockIO.LeafWeight != nil {
		res.BlkioLeafWeight = *r.BlockIO.LeafWeight
	}
	for _, wd := range r.BlockIO.WeightDevice {
		res.BlkioWeightDevice = upsertWeightDevice(res.BlkioWeightDevice, wd)
	}
	for _, td := range r.BlockIO.ThrottleReadBpsDevice {
		res.BlkioThrottleReadBpsDevice = upsertThrottleDevice(res.BlkioThrottleReadBpsDevice, td)
	}
	for _, td := range r.BlockIO.ThrottleWriteBpsDevice {
		res.BlkioThrottleWriteBpsDevice = upsertThrottleDevice(res.BlkioThrottleWriteBpsDevice, td)
	}
	for _, td := range r.BlockIO.ThrottleReadIOPSDevice {
		res.BlkioThrottleReadIOPSDevice = upsertThrottleDevice(res.BlkioThrottleReadIOPSDevice, td)
	}
	for _, td := range r.BlockIO.ThrottleWriteIOPSDevice {
		res.BlkioThrottleWriteIOPSDevice = upsertThrottleDevice(res.BlkioThrottleWriteIOPSDevice, td)
	}
	var p uint64
	var q int64
	if r.CPU.Period != nil {
		p = *r.CPU.Period
	}
	if r.CPU.Quota != nil {
		q = *r.CPU.Quota
	}
	switch {
	case (p == 0) == (q == 0):
		res.CpuPeriod, res.CpuQuota = p, q
	case p != 0:
		res.CpuPeriod = p
	default:
		res.CpuQuota = q
	}
	res.CpuBurst = r.CPU.Burst
	if r.CPU.Shares != nil {
		res.CpuShares = *r.CPU.Shares
		res.CpuWeight = cgroups.ConvertCPUSharesToCgroupV2Value(*r.CPU.Shares)
	}
	if r.CPU.RealtimePeriod != nil {
		res.CpuRtPeriod = *r.CPU.RealtimePeriod
	}
	if r.CPU.RealtimeRuntime != nil {
		res.CpuRtRuntime = *r.CPU.RealtimeRuntime
	}
	res.CpusetCpus = r.CPU.Cpus
	res.CpusetMems = r.CPU.Mems
	res.CPUIdle = r.CPU.Idle
	if r.Memory.Limit != nil {
		res.Memory = *r.Memory.Limit
	}
	if r.Memory.Reservation != nil {
		res.MemoryReservation = *r.Memory.Reservation
	}
	if r.Memory.Swap != nil {
		res.MemorySwap = *r.Memory.Swap
	}
	if r.Memory.CheckBeforeUpdate != nil {
		res.MemoryCheckBeforeUpdate = *r.Memory.CheckBeforeUpdate
	}
	res.PidsLimit = r.Pids.Limit
	res.Unified = r.Unified
	// `update` cannot change device rules; skipping them also keeps what a
	// device plugin added on top of ours. (Not saved into state.json.)
	res.SkipDevices = true
}

func updateIntelRdt(config *configs.Config, l3, mb string) error {
	if l3 != "" && !intelrdt.IsCATEnabled() {
		return errors.New("Intel RDT/CAT: l3 cache schema is not enabled")
	}
	if mb != "" && !intelrdt.IsMBAEnabled() {
		return errors.New("Intel RDT/MBA: memory bandwidth schema is not enabled")
	}
	if l3 == "" && mb == "" {
		return nil
	}
	if config.IntelRdt == nil {
		return errors.New("updating a non-existent Intel RDT configuration is not supported")
	}
	if l3 != "" {
		config.IntelRdt.L3CacheSchema = l3
	}
	if mb != "" {
		config.IntelRdt.MemBwSchema = mb
	}
	return nil
}

func upsertWeightDevice(devs []*cgroups.WeightDevice, wd specs.LinuxWeightDevice) []*cgroups.WeightDevice {
	for i, d := range slices.Backward(devs) {
		if d.Major == wd.Major && d.Minor == wd.Minor {
			if wd.Weight != nil {
				devs[i].Weight = *wd.Weight
			}
			if wd.LeafWeight != nil {
				devs[i].LeafWeight = *wd.LeafWeight
			}
			return devs
		}
	}
	var w, lw uint16
	if wd.Weight != nil {
		w = *wd.Weight
	}
	if wd.LeafWeight != nil {
		lw = *wd.LeafWeight
	}
	return append(devs, cgroups.NewWeightDevice(wd.Major, wd.Minor, w, lw))
}

func upsertThrottleDevice(devs []*cgroups.ThrottleDevice, td specs.LinuxThrottleDevice) []*cgroups.ThrottleDevice {
	for i, d := range slices.Backward(devs) {
		if d.Major == td.Major && d.Minor == td.Minor {
			devs[i].Rate = td.Rate
			return devs
		}
	}
	return append(devs, cgroups.NewThrottleDevice(td.Major, td.Minor, td.Rate))
}

func ptr[T any](v T) *T { return &v }
