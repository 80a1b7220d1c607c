package stats

import (
	"context"
	"testing"
	"time"
)

// Every series names a described metric and has as many label values as
// its descriptor has keys (kubelet drops a series that does not).
func TestMetricsMatchDescriptors(t *testing.T) {
	root := t.TempDir()
	setCPU := fakeV2(t, root, "/p/c", 2_500_000, 1<<20, 0, 0)
	c := v2Collector(t, root, time.Nanosecond)
	byName := map[string]Descriptor{}
	for _, d := range Descriptors() {
		if _, dup := byName[d.Name]; dup {
			t.Errorf("descriptor %s twice", d.Name)
		}
		byName[d.Name] = d
	}
	s, err := c.Container(context.Background(), "c", "/p/c")
	if err != nil {
		t.Fatal(err)
	}
	setCPU(3_000_000)
	p, err := c.Pod("p", "/p/c", "")
	if err != nil {
		t.Fatal(err)
	}
	p.Network = &Network{Interfaces: []Interface{{Name: "eth0", RxBytes: 10, TxBytes: 20}}}
	id := Identity{Container: "app", ID: "/p/c", Image: "busybox", Name: "c", Namespace: "ns", Pod: "pod"}
	all := append(ContainerMetrics(id, s), PodMetrics(id, p)...)
	seen := map[string]uint64{}
	for _, v := range all {
		d, ok := byName[v.Name]
		if !ok {
			t.Errorf("series %s has no descriptor", v.Name)
			continue
		}
		if len(v.Labels) != len(d.Labels) {
			t.Errorf("%s: %d label values for %d keys", v.Name, len(v.Labels), len(d.Labels))
		}
		if v.Counter != d.Counter {
			t.Errorf("%s: counter %v, descriptor says %v", v.Name, v.Counter, d.Counter)
		}
		if _, ok := seen[v.Name]; !ok {
			seen[v.Name] = v.Value // the container's, which come first
		}
	}
	if seen["container_cpu_usage_seconds_total"] != 2 {
		t.Errorf("cpu seconds = %d, want 2 (2.5 s, whole seconds)", seen["container_cpu_usage_seconds_total"])
	}
	if seen["container_network_transmit_bytes_total"] != 20 || seen["container_processes"] != 7 {
		t.Errorf("series: %v", seen)
	}
}
