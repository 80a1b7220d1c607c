package sandbox

import (
	"testing"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/errdefs"
)

// FuzzRunPodSandboxValidation feeds RunPodSandbox configs (protobuf
// encoded, as they arrive) to the validation that runs before anything is
// made: it must never panic, and what it refuses is InvalidArgument (or
// Unimplemented, for what is not built). The seeds run as unit tests in
// `go test`; `go test -fuzz FuzzRunPodSandboxValidation ./sandbox/`
// explores further.
func FuzzRunPodSandboxValidation(f *testing.F) {
	seeds := []*runtimeapi.PodSandboxConfig{
		{},
		{Metadata: &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "default", Uid: "u1"}, Hostname: "web"},
		{Metadata: &runtimeapi.PodSandboxMetadata{Name: "../../etc", Namespace: "a;b=c", Uid: "\x00"}},
		{Metadata: &runtimeapi.PodSandboxMetadata{Name: "n", Namespace: "ns", Uid: "u"}, Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: "../../..", Sysctls: map[string]string{"kernel.core_pattern": "|/evil", "net.ipv4.ip_forward": "1"},
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_TARGET, Network: 7}},
		}},
		{Metadata: &runtimeapi.PodSandboxMetadata{Name: "n", Namespace: "ns", Uid: "u"}, Hostname: string(make([]byte, 300)),
			DnsConfig: &runtimeapi.DNSConfig{Servers: []string{"not-an-ip"}, Searches: []string{"a\nb"}, Options: []string{"\x00"}}},
		{Metadata: &runtimeapi.PodSandboxMetadata{Name: "n", Namespace: "ns", Uid: "u"}, PortMappings: []*runtimeapi.PortMapping{nil, {HostPort: -1, ContainerPort: 70000, Protocol: 9}}},
	}
	for _, s := range seeds {
		b, err := proto.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "berth")
		f.Add(b, "")
	}
	f.Fuzz(func(t *testing.T, b []byte, handler string) {
		var cfg runtimeapi.PodSandboxConfig
		if proto.Unmarshal(b, &cfg) != nil {
			return
		}
		_, err := validate(CreateRequest{Config: &cfg, RuntimeHandler: handler})
		if err != nil && !errdefs.IsInvalid(err) && !errdefs.Is(err, errdefs.KindUnimplemented) {
			t.Fatalf("refused with kind %v, not InvalidArgument: %v", errdefs.KindOf(err), err)
		}
	})
}
