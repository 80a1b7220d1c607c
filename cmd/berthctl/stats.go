package main

import (
	"flag"
	"fmt"
	"time"

	units "github.com/docker/go-units"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func init() {
	register(&command{name: "stats", usage: "[-pod ID] [-label K=V]... [ID]", summary: "show container CPU, memory and writable-layer use", run: runStats})
	register(&command{name: "statsp", usage: "[-label K=V]... [ID]", summary: "show pod CPU, memory, network and processes", run: runStatsp})
}

// resample is how long to wait for a second sample: CPU % needs two, and
// the runtime keeps one per second.
const resample = 1100 * time.Millisecond

func runStats(c *cli, args []string) error {
	fs := flag.NewFlagSet("stats", flag.ContinueOnError)
	pod := fs.String("pod", "", "only containers of this pod (ID or prefix)")
	labels := labelFlags{}
	fs.Var(labels, "label", "only containers with this label KEY=VALUE (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("takes at most one ID (or ID prefix)")
	}
	req := &runtimeapi.ListContainerStatsRequest{Filter: &runtimeapi.ContainerStatsFilter{Id: fs.Arg(0), PodSandboxId: *pod, LabelSelector: labels}}
	resp, err := c.twice(func() (any, bool, error) {
		ctx, cancel := c.ctx()
		defer cancel()
		r, err := c.rt.ListContainerStats(ctx, req)
		if err != nil {
			return nil, false, err
		}
		for _, s := range r.Stats {
			if s.Cpu != nil && s.Cpu.UsageNanoCores == nil {
				return r, false, nil
			}
		}
		return r, true, nil
	})
	if err != nil {
		return err
	}
	stats := resp.(*runtimeapi.ListContainerStatsResponse)
	rows := make([][]string, 0, len(stats.Stats))
	for _, s := range stats.Stats {
		rows = append(rows, []string{
			truncID(s.GetAttributes().GetId()), s.GetAttributes().GetMetadata().GetName(),
			cpuPercent(s.GetCpu()), byteSize(s.GetMemory().GetWorkingSetBytes()),
			byteSize(s.GetWritableLayer().GetUsedBytes()), count(s.GetWritableLayer().GetInodesUsed()),
		})
	}
	return c.print(stats, []string{"CONTAINER", "NAME", "CPU %", "MEM", "DISK", "INODES"}, rows)
}

func runStatsp(c *cli, args []string) error {
	fs := flag.NewFlagSet("statsp", flag.ContinueOnError)
	labels := labelFlags{}
	fs.Var(labels, "label", "only pods with this label KEY=VALUE (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("takes at most one ID (or ID prefix)")
	}
	req := &runtimeapi.ListPodSandboxStatsRequest{Filter: &runtimeapi.PodSandboxStatsFilter{Id: fs.Arg(0), LabelSelector: labels}}
	resp, err := c.twice(func() (any, bool, error) {
		ctx, cancel := c.ctx()
		defer cancel()
		r, err := c.rt.ListPodSandboxStats(ctx, req)
		if err != nil {
			return nil, false, err
		}
		for _, s := range r.Stats {
			if cpu := s.GetLinux().GetCpu(); cpu != nil && cpu.UsageNanoCores == nil {
				return r, false, nil
			}
		}
		return r, true, nil
	})
	if err != nil {
		return err
	}
	stats := resp.(*runtimeapi.ListPodSandboxStatsResponse)
	rows := make([][]string, 0, len(stats.Stats))
	for _, s := range stats.Stats {
		l := s.GetLinux()
		md := s.GetAttributes().GetMetadata()
		net := l.GetNetwork().GetDefaultInterface()
		rows = append(rows, []string{
			truncID(s.GetAttributes().GetId()), md.GetNamespace() + "/" + md.GetName(),
			cpuPercent(l.GetCpu()), byteSize(l.GetMemory().GetWorkingSetBytes()),
			byteSize(net.GetRxBytes()) + " / " + byteSize(net.GetTxBytes()),
			count(l.GetProcess().GetProcessCount()), fmt.Sprint(len(l.GetContainers())),
		})
	}
	return c.print(stats, []string{"POD", "NAME", "CPU %", "MEM", "NET RX / TX", "PROCS", "CONTAINERS"}, rows)
}

// twice calls list, and once more after resample if it says a CPU rate
// was missing (a first sample).
func (c *cli) twice(list func() (any, bool, error)) (any, error) {
	r, complete, err := list()
	if err != nil || complete {
		return r, err
	}
	time.Sleep(resample)
	r, _, err = list()
	return r, err
}

func cpuPercent(cpu *runtimeapi.CpuUsage) string {
	if cpu.GetUsageNanoCores() == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f", float64(cpu.UsageNanoCores.Value)/1e7)
}

func byteSize(v *runtimeapi.UInt64Value) string {
	if v == nil {
		return "-"
	}
	return units.BytesSize(float64(v.Value))
}

func count(v *runtimeapi.UInt64Value) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprint(v.Value)
}
