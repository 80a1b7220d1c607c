package stats

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/opencontainers/cgroups"
)

// devices groups the cgroup's per-device I/O counters (v1 blkio, v2
// io.stat, as the library reads them) by device, in major:minor order.
func devices(b *cgroups.BlkioStats) []Device {
	byDev := map[[2]uint64]*Device{}
	get := func(e cgroups.BlkioStatEntry) *Device {
		k := [2]uint64{e.Major, e.Minor}
		d := byDev[k]
		if d == nil {
			d = &Device{Major: e.Major, Minor: e.Minor, Bytes: map[string]uint64{}, Ops: map[string]uint64{}}
			byDev[k] = d
		}
		return d
	}
	for _, e := range b.IoServiceBytesRecursive {
		get(e).Bytes[e.Op] = e.Value
	}
	for _, e := range b.IoServicedRecursive {
		get(e).Ops[e.Op] = e.Value
	}
	out := make([]Device, 0, len(byDev))
	for _, d := range byDev {
		d.Name = deviceName(d.Major, d.Minor)
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Major != out[j].Major {
			return out[i].Major < out[j].Major
		}
		return out[i].Minor < out[j].Minor
	})
	return out
}

// sysDevBlock is where the kernel names block devices by number.
var sysDevBlock = "/sys/dev/block"

// deviceName is /dev/<DEVNAME> of a block device, as cAdvisor labels it,
// or "major:minor" when sysfs does not name it.
func deviceName(major, minor uint64) string {
	num := fmt.Sprintf("%d:%d", major, minor)
	f, err := os.Open(sysDevBlock + "/" + num + "/uevent")
	if err != nil {
		return num
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if name, ok := strings.CutPrefix(sc.Text(), "DEVNAME="); ok && name != "" {
			return "/dev/" + name
		}
	}
	return num
}
