package e2e

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/cgroupdriver"
)

// statsHandler is the one runtime handler the stats tests use: stats come
// from cgroups and storage, not from the runtime.
func statsHandler(t *testing.T) string {
	t.Helper()
	names := handlerNames(t)
	if len(names) == 0 {
		t.Skip("no runtime handler: neither berth-runner nor runc is there")
	}
	return names[0]
}

func (e *ctrEnv) containerStats(t testing.TB, id string) *runtimeapi.ContainerStats {
	t.Helper()
	resp, err := e.d.Runtime.ContainerStats(e.d.Ctx(t), &runtimeapi.ContainerStatsRequest{ContainerId: id})
	if err != nil {
		t.Fatalf("ContainerStats %s: %v", id, err)
	}
	return resp.Stats
}

func (e *ctrEnv) podStats(t testing.TB, id string) *runtimeapi.PodSandboxStats {
	t.Helper()
	resp, err := e.d.Runtime.PodSandboxStats(e.d.Ctx(t), &runtimeapi.PodSandboxStatsRequest{PodSandboxId: id})
	if err != nil {
		t.Fatalf("PodSandboxStats %s: %v", id, err)
	}
	return resp.Stats
}

// afterCache waits out the stats cache, so the next read is a new sample.
func afterCache() { time.Sleep(1100 * time.Millisecond) }

// A container burning CPU shows growing cumulative CPU and, from its
// second sample on, nonzero nanocores; the pod's CPU covers it.
func TestStatsCPU(t *testing.T) {
	e := startContainerEnv(t)
	pod := e.pod(t, statsHandler(t), runtimeapi.NamespaceMode_CONTAINER)
	id := e.run(t, pod, e.config("burn", "sh", "-c", "while :; do :; done"))

	first := e.containerStats(t, id)
	if first.GetCpu().GetTimestamp() == 0 || first.GetAttributes().GetId() != id || first.GetAttributes().GetMetadata().GetName() != "burn" {
		t.Fatalf("first stats: %v", first)
	}
	time.Sleep(1500 * time.Millisecond)
	second := e.containerStats(t, id)
	u1, u2 := first.Cpu.UsageCoreNanoSeconds.GetValue(), second.Cpu.UsageCoreNanoSeconds.GetValue()
	if u2 <= u1 {
		t.Errorf("cumulative CPU did not grow: %d then %d", u1, u2)
	}
	nc := second.Cpu.GetUsageNanoCores().GetValue()
	if nc == 0 {
		t.Errorf("no nanocores on the second sample")
	}
	t.Logf("burner: %.2f cores, %v CPU in %v", float64(nc)/1e9, time.Duration(u2-u1), time.Duration(second.Cpu.Timestamp-first.Cpu.Timestamp))
	if ps := e.podStats(t, pod); ps.GetLinux().GetCpu().GetUsageCoreNanoSeconds().GetValue() < u2 || len(ps.Linux.Containers) != 1 {
		t.Errorf("pod CPU %d < its container's %d, or containers %d", ps.GetLinux().GetCpu().GetUsageCoreNanoSeconds().GetValue(), u2, len(ps.GetLinux().GetContainers()))
	}
}

// A container that fills 40 MiB of tmpfs (page cache that cannot be
// dropped) reports a working set within 10% of it; the writable layer
// grows with a file written to the root filesystem.
func TestStatsMemoryAndWritableLayer(t *testing.T) {
	e := startContainerEnv(t)
	pod := e.pod(t, statsHandler(t), runtimeapi.NamespaceMode_CONTAINER)
	id := e.run(t, pod, e.config("mem", "sh", "-c", "sleep 3600"))

	base := e.containerStats(t, id)
	if base.GetMemory().GetTimestamp() == 0 || base.GetWritableLayer().GetFsId().GetMountpoint() == "" {
		t.Fatalf("stats of a running container: %v", base)
	}
	if base.WritableLayer.GetUsedBytes().GetValue() == 0 || base.WritableLayer.GetInodesUsed().GetValue() == 0 {
		t.Errorf("writable layer of a fresh container: %v (want its directory counted)", base.WritableLayer)
	}
	const alloc = 40 << 20
	if r := e.exec(t, id, 30, "dd", "if=/dev/zero", "of=/dev/shm/fill", "bs=1M", "count=40"); r.ExitCode != 0 {
		t.Fatalf("dd into /dev/shm: %d %s", r.ExitCode, r.Stderr)
	}
	if r := e.exec(t, id, 30, "dd", "if=/dev/zero", "of=/written", "bs=1M", "count=8"); r.ExitCode != 0 {
		t.Fatalf("dd into the root filesystem: %d %s", r.ExitCode, r.Stderr)
	}
	afterCache()
	st := e.containerStats(t, id)
	ws := st.GetMemory().GetWorkingSetBytes().GetValue()
	grew := ws - base.GetMemory().GetWorkingSetBytes().GetValue()
	t.Logf("working set %d KiB (grew %d KiB for %d KiB in tmpfs), usage %d KiB, rss %d KiB",
		ws>>10, grew>>10, alloc>>10, st.Memory.GetUsageBytes().GetValue()>>10, st.Memory.GetRssBytes().GetValue()>>10)
	if ws < alloc || ws > alloc*11/10 {
		t.Errorf("working set %d, want within 10%% of the %d allocated", ws, alloc)
	}
	before, after := base.WritableLayer.UsedBytes.GetValue(), st.GetWritableLayer().GetUsedBytes().GetValue()
	if after < before+8<<20 {
		t.Errorf("writable layer %d -> %d bytes after writing 8 MiB", before, after)
	}
	if st.WritableLayer.InodesUsed.GetValue() <= base.WritableLayer.InodesUsed.GetValue() {
		t.Errorf("writable layer inodes %d -> %d after a new file", base.WritableLayer.InodesUsed.GetValue(), st.WritableLayer.InodesUsed.GetValue())
	}

	// Filters: by id prefix, by pod, by label; an unknown id matches none.
	list := func(f *runtimeapi.ContainerStatsFilter) int {
		resp, err := e.d.Runtime.ListContainerStats(e.d.Ctx(t), &runtimeapi.ListContainerStatsRequest{Filter: f})
		if err != nil {
			t.Fatalf("ListContainerStats %v: %v", f, err)
		}
		return len(resp.Stats)
	}
	if n := list(&runtimeapi.ContainerStatsFilter{Id: id[:12]}); n != 1 {
		t.Errorf("by id prefix: %d", n)
	}
	if n := list(&runtimeapi.ContainerStatsFilter{PodSandboxId: pod}); n != 1 {
		t.Errorf("by pod: %d", n)
	}
	if n := list(&runtimeapi.ContainerStatsFilter{Id: strings.Repeat("f", 64)}); n != 0 {
		t.Errorf("unknown id: %d", n)
	}
	if n := list(&runtimeapi.ContainerStatsFilter{LabelSelector: map[string]string{"nope": "x"}}); n != 0 {
		t.Errorf("unmatched label: %d", n)
	}
	_, err := e.d.Runtime.ContainerStats(e.d.Ctx(t), &runtimeapi.ContainerStatsRequest{ContainerId: strings.Repeat("f", 64)})
	wantCode(t, "ContainerStats of an unknown id", err, codes.NotFound)
	_, err = e.d.Runtime.ContainerStats(e.d.Ctx(t), &runtimeapi.ContainerStatsRequest{})
	wantCode(t, "ContainerStats without an id", err, codes.InvalidArgument)

	// An exited container still has stats: its writable layer.
	e.stop(t, id, 0)
	afterCache()
	if st := e.containerStats(t, id); st.GetWritableLayer().GetUsedBytes().GetValue() < 8<<20 || st.Cpu != nil {
		t.Errorf("stats of an exited container: %v", st)
	}
}

// Traffic through a pod's interface shows in its network stats and in
// its CRI metrics.
func TestStatsNetworkAndMetrics(t *testing.T) {
	e := startContainerEnv(t)
	n := newTestNet(t)
	n.write(t, e.d.CNIConfDir, "05-bridge.conflist", n.plugins())
	pod := e.pod(t, statsHandler(t), runtimeapi.NamespaceMode_CONTAINER)
	ctr := e.run(t, pod, e.config("app", "sh", "-c", "sleep 3600"))
	v := podStatus(t, e.d, pod)
	ip, netns := v.Status.GetNetwork().GetIp(), v.Info.Namespaces["network"]
	if ip == "" || netns == "" {
		t.Fatalf("pod has no IP (%q) or network namespace (%q)", ip, netns)
	}
	var ln net.Listener
	inNetNS(t, netns, func() (err error) {
		ln, err = net.Listen("tcp", net.JoinHostPort(ip, "7070"))
		return err
	})
	t.Cleanup(func() { ln.Close() })
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		n, _ := io.Copy(io.Discard, c)
		c.Close()
		got <- n
	}()

	before := e.podStats(t, pod).GetLinux().GetNetwork()
	if before.GetDefaultInterface().GetName() != "eth0" || before.GetTimestamp() == 0 {
		t.Fatalf("pod network stats: %v", before)
	}
	const payload = 2 << 20
	c, err := net.Dial("tcp", net.JoinHostPort(ip, "7070"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(make([]byte, payload)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if n := <-got; n != payload {
		t.Fatalf("pod received %d bytes, want %d", n, payload)
	}
	afterCache()
	after := e.podStats(t, pod).GetLinux().GetNetwork().GetDefaultInterface()
	rx0, rx1 := before.DefaultInterface.RxBytes.GetValue(), after.GetRxBytes().GetValue()
	if rx1 < rx0+payload {
		t.Errorf("eth0 rx %d -> %d after %d bytes in", rx0, rx1, payload)
	}
	if after.GetTxBytes().GetValue() <= before.DefaultInterface.TxBytes.GetValue() {
		t.Errorf("eth0 tx did not grow (acks)")
	}
	t.Logf("eth0 rx +%d bytes for %d sent", rx1-rx0, payload)

	// The same traffic in the CRI metrics, under described names.
	desc, err := e.d.Runtime.ListMetricDescriptors(e.d.Ctx(t), &runtimeapi.ListMetricDescriptorsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]int{}
	for _, d := range desc.Descriptors {
		keys[d.Name] = len(d.LabelKeys)
	}
	mresp, err := e.d.Runtime.ListPodSandboxMetrics(e.d.Ctx(t), &runtimeapi.ListPodSandboxMetricsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var pm *runtimeapi.PodSandboxMetrics
	for _, m := range mresp.PodMetrics {
		if m.PodSandboxId == pod {
			pm = m
		}
	}
	if pm == nil || len(pm.ContainerMetrics) != 1 || pm.ContainerMetrics[0].ContainerId != ctr {
		t.Fatalf("pod metrics: %v", pm)
	}
	found := map[string]uint64{}
	for _, m := range append(pm.Metrics, pm.ContainerMetrics[0].Metrics...) {
		if n, ok := keys[m.Name]; !ok || n != len(m.LabelValues) {
			t.Errorf("metric %s: %d label values, descriptor has %d (known %v)", m.Name, len(m.LabelValues), n, ok)
		}
		if m.Name == "container_network_receive_bytes_total" && m.LabelValues[len(m.LabelValues)-1] != "eth0" {
			continue
		}
		found[m.Name] = m.Value.GetValue()
	}
	if found["container_network_receive_bytes_total"] < payload {
		t.Errorf("container_network_receive_bytes_total{interface=eth0} = %d", found["container_network_receive_bytes_total"])
	}
	if _, ok := found["container_memory_working_set_bytes"]; !ok {
		t.Errorf("no container_memory_working_set_bytes among %v", found)
	}

	// The container's processes, limits, layer filesystem and times.
	cm := map[string]uint64{}
	for _, m := range pm.ContainerMetrics[0].Metrics {
		if _, ok := cm[m.Name]; !ok {
			cm[m.Name] = m.Value.GetValue()
		}
	}
	for _, name := range []string{"container_threads", "container_file_descriptors", "container_fs_limit_bytes",
		"container_fs_inodes_free", "container_spec_cpu_shares", "container_start_time_seconds", "container_last_seen"} {
		if cm[name] == 0 {
			t.Errorf("container %s = 0 or missing among %v", name, cm)
		}
	}
	if _, ok := cm["container_sockets"]; !ok {
		t.Errorf("no container_sockets among %v", cm)
	}
	if st, seen := cm["container_start_time_seconds"], cm["container_last_seen"]; st > seen || seen > uint64(time.Now().Unix()) {
		t.Errorf("started %d, last seen %d, now %d", st, seen, time.Now().Unix())
	}
}

// UpdatePodSandboxResources writes the pod's resources plus overhead to
// its cgroup.
func TestUpdatePodSandboxResources(t *testing.T) {
	e := startContainerEnv(t)
	pod := e.pod(t, statsHandler(t), runtimeapi.NamespaceMode_CONTAINER)
	// The pod's cgroup as a path (a systemd slice expanded).
	cg, err := cgroupdriver.Path(podStatus(t, e.d, pod).Info.CgroupParent)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.d.Runtime.UpdatePodSandboxResources(e.d.Ctx(t), &runtimeapi.UpdatePodSandboxResourcesRequest{
		PodSandboxId: pod,
		Resources:    &runtimeapi.LinuxContainerResources{CpuShares: 512, CpuPeriod: 100000, CpuQuota: 50000, MemoryLimitInBytes: 128 << 20},
		Overhead:     &runtimeapi.LinuxContainerResources{CpuShares: 100, CpuPeriod: 100000, CpuQuota: 10000, MemoryLimitInBytes: 16 << 20},
	})
	if err != nil {
		t.Fatalf("UpdatePodSandboxResources: %v", err)
	}
	read := func(parts ...string) string {
		b, err := os.ReadFile(filepath.Join(append([]string{"/sys/fs/cgroup"}, parts...)...))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	if cgroups.IsCgroup2UnifiedMode() {
		if got := read(cg, "memory.max"); got != strconv.Itoa(144<<20) {
			t.Errorf("memory.max = %s", got)
		}
		if got := read(cg, "cpu.max"); got != "60000 100000" {
			t.Errorf("cpu.max = %s", got)
		}
	} else {
		for file, want := range map[string]string{
			"cpu/" + cg + "/cpu.shares":               strconv.Itoa(612),
			"cpu/" + cg + "/cpu.cfs_quota_us":         "60000",
			"memory/" + cg + "/memory.limit_in_bytes": strconv.Itoa(144 << 20),
		} {
			if got := read(file); got != want {
				t.Errorf("%s = %s, want %s", file, got, want)
			}
		}
	}
	_, err = e.d.Runtime.UpdatePodSandboxResources(e.d.Ctx(t), &runtimeapi.UpdatePodSandboxResourcesRequest{
		PodSandboxId: strings.Repeat("e", 64), Resources: &runtimeapi.LinuxContainerResources{CpuShares: 2},
	})
	wantCode(t, "UpdatePodSandboxResources of an unknown pod", err, codes.NotFound)
	_, err = e.d.Runtime.UpdatePodSandboxResources(e.d.Ctx(t), &runtimeapi.UpdatePodSandboxResourcesRequest{PodSandboxId: pod})
	wantCode(t, "UpdatePodSandboxResources without resources", err, codes.InvalidArgument)
}

// The streamed lists answer what the List forms do.
func TestStreamedLists(t *testing.T) {
	e := startContainerEnv(t)
	pod := e.pod(t, statsHandler(t), runtimeapi.NamespaceMode_CONTAINER)
	for i := range 3 {
		e.run(t, pod, e.config(fmt.Sprintf("c%d", i), "sh", "-c", "sleep 3600"))
	}
	ctx := e.d.Ctx(t)
	sc, err := e.d.Runtime.StreamContainers(ctx, &runtimeapi.StreamContainersRequest{Filter: &runtimeapi.ContainerFilter{PodSandboxId: pod}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for {
		m, err := sc.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range m.Containers {
			ids = append(ids, c.Id)
		}
	}
	lc, err := e.d.Runtime.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{PodSandboxId: pod}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 3 || len(lc.Containers) != 3 || ids[0] != lc.Containers[0].Id {
		t.Errorf("streamed %v, listed %d", ids, len(lc.Containers))
	}
	ss, err := e.d.Runtime.StreamPodSandboxStats(ctx, &runtimeapi.StreamPodSandboxStatsRequest{Filter: &runtimeapi.PodSandboxStatsFilter{Id: pod}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := ss.Recv()
	if err != nil || len(m.PodSandboxStats) != 1 || len(m.PodSandboxStats[0].GetLinux().GetContainers()) != 3 {
		t.Fatalf("StreamPodSandboxStats: %v, %v", m, err)
	}
	if _, err := ss.Recv(); err != io.EOF {
		t.Errorf("after the one page: %v, want EOF", err)
	}
	si, err := e.d.Image.StreamImages(ctx, &runtimeapi.StreamImagesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := si.Recv(); err != nil || len(m.Images) == 0 {
		t.Errorf("StreamImages: %v, %v", m, err)
	}
}

// berthctl stats and statsp show the tables (CPU % from a second sample)
// and -o json the CRI messages; berthctl events follows the stream.
func TestBerthctlStatsAndEvents(t *testing.T) {
	e := startContainerEnv(t)
	ev := exec.Command(filepath.Join(e.d.BinDir, "berthctl"), "-endpoint", e.d.Socket, "-o", "json", "events")
	var evOut syncBuffer
	ev.Stdout = &evOut
	following := make(chan struct{})
	ev.Stderr = &lineSignal{want: "following events", seen: following}
	if err := ev.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ev.Process.Kill(); ev.Wait() })
	select {
	case <-following: // subscribed: no event of the pod below is missed
	case <-time.After(time.Minute):
		t.Fatal("berthctl events never said it follows")
	}
	pod := e.pod(t, statsHandler(t), runtimeapi.NamespaceMode_CONTAINER)
	id := e.run(t, pod, e.config("busy", "sh", "-c", "while :; do :; done"))

	out, err := e.berthctl(t, "stats")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "CONTAINER") || !strings.Contains(lines[1], id[:12]) {
		t.Fatalf("berthctl stats:\n%s", out)
	}
	if f := strings.Fields(lines[1]); len(f) < 3 || f[2] == "-" {
		t.Errorf("no CPU %% for a running container:\n%s", out)
	} else if pct, err := strconv.ParseFloat(f[2], 64); err != nil || pct <= 0 {
		t.Errorf("CPU %% %q:\n%s", f[2], out)
	}
	out, err = e.berthctl(t, "-o", "json", "statsp", pod[:12])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `"workingSetBytes"`) || !strings.Contains(out, id) {
		t.Errorf("berthctl -o json statsp:\n%s", out)
	}
	out, err = e.berthctl(t, "statsp")
	if err != nil || !strings.Contains(out, "NET RX / TX") || !strings.Contains(out, pod[:12]) {
		t.Errorf("berthctl statsp: %v\n%s", err, out)
	}
	e.stop(t, id, 0)
	waitFor(t, func() bool { return strings.Count(evOut.String(), "\n") >= 5 })
	got := strings.Split(strings.TrimSpace(evOut.String()), "\n")
	c, st := runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT, runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT
	for i, want := range []runtimeapi.ContainerEventType{c, st, c, st, runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT} {
		var ev runtimeapi.ContainerEventResponse
		if err := protojson.Unmarshal([]byte(got[i]), &ev); err != nil {
			t.Fatalf("event line %d: %v\n%s", i, err, got[i])
		}
		if ev.ContainerEventType != want {
			t.Errorf("event line %d: %v, want %v", i, ev.ContainerEventType, want)
		}
	}
}

// BenchmarkListStats100 times ListContainerStats and ListPodSandboxStats
// through gRPC on a berthd running 100 containers in 10 pods: "fresh"
// reads every cgroup, writable layer and network namespace again (the
// one-second cache expired between ops), "cached" is a second poll within
// the second.
func BenchmarkListStats100(b *testing.B) {
	e := startContainerEnv(b)
	names := handlerNames(b)
	if len(names) == 0 {
		b.Skip("no runtime handler")
	}
	for p := range 10 {
		pod := e.pod(b, names[0], runtimeapi.NamespaceMode_CONTAINER)
		for c := range 10 {
			e.run(b, pod, e.config(fmt.Sprintf("c%d", c), "sleep", "3600"))
		}
		_ = p
	}
	ctx := e.d.Ctx(b)
	lists := map[string]func() int{
		"containers": func() int {
			r, err := e.d.Runtime.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{})
			if err != nil {
				b.Fatal(err)
			}
			return len(r.Stats)
		},
		"pods": func() int {
			r, err := e.d.Runtime.ListPodSandboxStats(ctx, &runtimeapi.ListPodSandboxStatsRequest{})
			if err != nil {
				b.Fatal(err)
			}
			return len(r.Stats)
		},
	}
	for _, name := range []string{"containers", "pods"} {
		list := lists[name]
		b.Run(name+"/fresh", func(b *testing.B) {
			cpu := processCPU(b, e.d.PID())
			for b.Loop() {
				b.StopTimer()
				afterCache()
				b.StartTimer()
				if n := list(); n != 100 && n != 10 {
					b.Fatalf("%d stats", n)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100, "ns/container")
			b.ReportMetric(float64(processCPU(b, e.d.PID())-cpu)/float64(b.N)/100, "berthd-cpu-ns/container")
		})
		b.Run(name+"/cached", func(b *testing.B) {
			list()
			for b.Loop() {
				list()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100, "ns/container")
		})
	}
}

// processCPU is a process's user and system CPU time so far, in
// nanoseconds (clock-tick resolution): on a shared machine it says more
// about berthd's cost than the wall clock.
func processCPU(t testing.TB, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command (which may hold spaces) start at state.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return (utime + stime) * int64(time.Second) / 100 // USER_HZ
}

// A container that nests directories 20,000 deep (issue 23) gets its
// writable layer measured, every directory counted, and is removed as
// any other. The walk of round 1 re-resolved each directory from the
// layer's root: it took 5.5 minutes for 4,000 levels, longer than the
// request's deadline, and held up every stats caller of the node.
func TestStatsDeepWritableLayer(t *testing.T) {
	e := startContainerEnv(t)
	pod := e.pod(t, statsHandler(t), runtimeapi.NamespaceMode_CONTAINER)
	const depth = 20 * 1000
	id := e.run(t, pod, e.config("deep", "sh", "-c",
		// 20 times: mkdir -p of 1,000 levels (a path within PATH_MAX),
		// and into them.
		"p=a; i=1; while [ $i -lt 1000 ]; do p=$p/a; i=$((i+1)); done; "+
			"j=0; while [ $j -lt 20 ]; do mkdir -p $p && cd -P $p 2>/dev/null || exit 1; j=$((j+1)); done; touch /done; sleep 3600"))
	for deadline := time.Now().Add(10 * time.Minute); ; time.Sleep(time.Second) {
		if st := e.status(t, id); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Fatalf("the container making the chain exited: %d %s %s", st.ExitCode, st.Reason, st.Message)
		}
		if e.exec(t, id, 30, "test", "-e", "/done").ExitCode == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the chain is not made after 10 minutes")
		}
	}

	st := e.containerStats(t, id)
	if n := st.GetWritableLayer().GetInodesUsed().GetValue(); n < depth {
		t.Errorf("writable layer inodes %d, want at least the %d directories", n, depth)
	}
	resp, err := e.d.Runtime.ListContainerStats(e.d.Ctx(t), &runtimeapi.ListContainerStatsRequest{})
	if err != nil || len(resp.Stats) != 1 {
		t.Fatalf("ListContainerStats: %v, %v", resp, err)
	}
	e.stop(t, id, 0)
	if _, err := e.d.Runtime.RemoveContainer(e.d.Ctx(t), &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Errorf("RemoveContainer of the deep container: %v", err)
	}
}
