package oci

import (
	"testing"

	rspec "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-cri/berth/errdefs"
)

func TestMergeResourcesKeepsWhatTheUpdateLeaves(t *testing.T) {
	limit, shares, newLimit := int64(64<<20), uint64(512), int64(128<<20)
	base := &rspec.LinuxResources{
		Memory:         &rspec.LinuxMemory{Limit: &limit},
		CPU:            &rspec.LinuxCPU{Shares: &shares, Cpus: "0"},
		HugepageLimits: []rspec.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1}},
	}
	got := MergeResources(base, &rspec.LinuxResources{
		Memory:         &rspec.LinuxMemory{Limit: &newLimit},
		CPU:            &rspec.LinuxCPU{Mems: "0"},
		HugepageLimits: []rspec.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 2}},
	})
	if *got.Memory.Limit != newLimit || *got.CPU.Shares != shares || got.CPU.Cpus != "0" || got.CPU.Mems != "0" {
		t.Errorf("merged = memory %d shares %d cpus %q mems %q", *got.Memory.Limit, *got.CPU.Shares, got.CPU.Cpus, got.CPU.Mems)
	}
	if len(got.HugepageLimits) != 1 || got.HugepageLimits[0].Limit != 2 {
		t.Errorf("hugepages = %v, want the 2MB limit replaced", got.HugepageLimits)
	}
	if *base.Memory.Limit != limit || base.HugepageLimits[0].Limit != 1 {
		t.Errorf("the base changed: %v", base)
	}
}

func TestCheckResourcesHoldsPluginsToTheNode(t *testing.T) {
	swap := int64(1 << 30)
	lr := &rspec.LinuxResources{Memory: &rspec.LinuxMemory{Swap: &swap}}
	if err := CheckResources(lr, &Host{}); err != nil || lr.Memory.Swap != nil {
		t.Errorf("swap without accounting: err %v, swap %v (want dropped)", err, lr.Memory.Swap)
	}
	for name, lr := range map[string]*rspec.LinuxResources{
		"hugepages": {HugepageLimits: []rspec.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1}}},
		"unified":   {Unified: map[string]string{"memory.high": "1"}},
	} {
		if err := CheckResources(lr, &Host{}); !errdefs.IsInvalid(err) {
			t.Errorf("%s on a node without it: err = %v, want invalid", name, err)
		}
	}
	if out := criResources(&rspec.LinuxResources{Memory: &rspec.LinuxMemory{Swap: &swap}}, -5); out.MemorySwapLimitInBytes != swap || out.OomScoreAdj != -5 {
		t.Errorf("criResources = %v", out)
	}
}
