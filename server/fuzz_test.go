package server

import (
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/errdefs"
	"github.com/berth-cri/berth/oci"
)

// The fuzz targets below feed requests, protobuf encoded as they arrive,
// to the validation and conversion each RPC runs before it makes
// anything: it must never panic, and what it refuses is InvalidArgument.
// Their seeds run as unit tests in `go test`; `go test -fuzz NAME
// ./server/` explores further.

func addSeeds[M proto.Message](f *testing.F, seeds ...M) {
	f.Helper()
	for _, s := range seeds {
		b, err := proto.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func wantInvalidOrNil(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil && !errdefs.IsInvalid(err) {
		t.Fatalf("%s refused with kind %v, not InvalidArgument: %v", what, errdefs.KindOf(err), err)
	}
}

// fuzzRootfs is an image root with /etc/passwd and /etc/group.
func fuzzRootfs(f *testing.F) string {
	root := f.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		f.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\napp:x:1000:\n"), 0o644)
	return root
}

func FuzzCreateContainerValidation(f *testing.F) {
	addSeeds(f,
		&runtimeapi.CreateContainerRequest{},
		&runtimeapi.CreateContainerRequest{PodSandboxId: "p", Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Image: &runtimeapi.ImageSpec{Image: "busybox"},
			Command: []string{"sh"}, Envs: []*runtimeapi.KeyValue{{Key: "A", Value: []byte("b")}, nil, {Key: "=", Value: []byte("\x00")}},
			Mounts:  []*runtimeapi.Mount{nil, {ContainerPath: "../../etc", HostPath: "relative"}, {ContainerPath: "/proc/sys", HostPath: "/nonexistent-berth-fuzz"}},
			Devices: []*runtimeapi.Device{nil, {ContainerPath: "/dev/x", HostPath: "/nonexistent-berth-fuzz", Permissions: "rwmz"}},
			Linux: &runtimeapi.LinuxContainerConfig{
				Resources: &runtimeapi.LinuxContainerResources{CpuShares: -1, MemoryLimitInBytes: -5, OomScoreAdj: 1 << 20, CpusetCpus: "0-999999999",
					HugepageLimits: []*runtimeapi.HugepageLimit{nil, {PageSize: "huge"}}, Unified: map[string]string{"../x": "1"}},
				SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
					RunAsUser: &runtimeapi.Int64Value{Value: -1}, RunAsUsername: "nobody-here", RunAsGroup: &runtimeapi.Int64Value{Value: 1 << 40},
					SupplementalGroups: []int64{-1, 1 << 33}, Capabilities: &runtimeapi.Capability{AddCapabilities: []string{"NOT_A_CAP", "ALL"}},
					Seccomp:  &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "relative/profile.json"},
					Apparmor: &runtimeapi.SecurityProfile{ProfileType: 42}, MaskedPaths: []string{"relative"}, ReadonlyPaths: []string{""},
					NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_TARGET, TargetId: "../x", Ipc: 9},
				},
			},
			LogPath: "../../../etc/passwd", StopSignal: 999,
		}},
		&runtimeapi.CreateContainerRequest{PodSandboxId: "p", Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "a/b"}, Image: &runtimeapi.ImageSpec{Image: "x"}}},
	)
	rootfs := fuzzRootfs(f)
	host := &oci.Host{Capabilities: oci.DefaultCapabilities}
	f.Fuzz(func(t *testing.T, b []byte) {
		var req runtimeapi.CreateContainerRequest
		if proto.Unmarshal(b, &req) != nil {
			return
		}
		if err := validateCreate(&req); err != nil {
			wantInvalidOrNil(t, "validateCreate", err)
			return
		}
		_, err := oci.Generate(&oci.SpecOptions{ID: "0123456789abcdef", Config: req.GetConfig(),
			Pod: &oci.Pod{ID: "p", LogDirectory: "/var/log/pods/p"}, Rootfs: rootfs, Host: host})
		wantInvalidOrNil(t, "spec generation", err)
	})
}

func FuzzUpdateContainerResourcesValidation(f *testing.F) {
	addSeeds(f,
		&runtimeapi.UpdateContainerResourcesRequest{},
		&runtimeapi.UpdateContainerResourcesRequest{ContainerId: "c", Linux: &runtimeapi.LinuxContainerResources{
			CpuPeriod: -1, CpuQuota: -1 << 62, CpuShares: 1 << 62, MemoryLimitInBytes: 1, MemorySwapLimitInBytes: -2,
			CpusetCpus: "a-b", CpusetMems: "0,,1", OomScoreAdj: -2000, Unified: map[string]string{"memory.max": "max", "": ""},
			HugepageLimits: []*runtimeapi.HugepageLimit{nil, {PageSize: "1GB", Limit: 1<<63 - 1}},
		}},
	)
	host := &oci.Host{Capabilities: oci.DefaultCapabilities}
	f.Fuzz(func(t *testing.T, b []byte) {
		var req runtimeapi.UpdateContainerResourcesRequest
		if proto.Unmarshal(b, &req) != nil || req.GetLinux() == nil {
			return
		}
		_, err := oci.Resources(req.GetLinux(), host)
		wantInvalidOrNil(t, "resources", err)
	})
}
