package oci

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-cri/berth/errdefs"
)

// The decisions of appArmorFor on a node with AppArmor, with the kernel's
// list of loaded profiles replaced by a file of the test's (this test
// machine has no AppArmor).
func TestAppArmorDecisions(t *testing.T) {
	profiles := filepath.Join(t.TempDir(), "profiles")
	must(t, os.WriteFile(profiles, []byte("berth-default (enforce)\nmy profile (complain)\n"), 0o644))
	old := appArmorProfilesFile
	appArmorProfilesFile = profiles
	t.Cleanup(func() { appArmorProfilesFile = old })

	on, off := &Host{AppArmor: true}, &Host{}
	sp := func(typ runtimeapi.SecurityProfile_ProfileType, ref string) *runtimeapi.LinuxContainerSecurityContext {
		return &runtimeapi.LinuxContainerSecurityContext{Apparmor: &runtimeapi.SecurityProfile{ProfileType: typ, LocalhostRef: ref}}
	}
	for _, tc := range []struct {
		name    string
		sc      *runtimeapi.LinuxContainerSecurityContext
		host    *Host
		want    string
		invalid bool
	}{
		{"default field unset", &runtimeapi.LinuxContainerSecurityContext{}, on, DefaultAppArmorProfile, false},
		{"RuntimeDefault", sp(runtimeapi.SecurityProfile_RuntimeDefault, ""), on, DefaultAppArmorProfile, false},
		{"runtime/default (deprecated field)", &runtimeapi.LinuxContainerSecurityContext{ApparmorProfile: "runtime/default"}, on, DefaultAppArmorProfile, false},
		{"Unconfined", sp(runtimeapi.SecurityProfile_Unconfined, ""), on, "", false},
		{"unconfined (deprecated field)", &runtimeapi.LinuxContainerSecurityContext{ApparmorProfile: "unconfined"}, on, "", false},
		{"Localhost loaded", sp(runtimeapi.SecurityProfile_Localhost, "my profile"), on, "my profile", false},
		{"Localhost with prefix", sp(runtimeapi.SecurityProfile_Localhost, "localhost/my profile"), on, "my profile", false},
		{"localhost/ (deprecated field)", &runtimeapi.LinuxContainerSecurityContext{ApparmorProfile: "localhost/berth-default"}, on, "berth-default", false},
		{"Localhost not loaded", sp(runtimeapi.SecurityProfile_Localhost, "absent"), on, "", true},
		{"Localhost without name", sp(runtimeapi.SecurityProfile_Localhost, ""), on, "", true},
		{"unknown deprecated value", &runtimeapi.LinuxContainerSecurityContext{ApparmorProfile: "bogus"}, on, "", true},
		{"AppArmor off: default", sp(runtimeapi.SecurityProfile_RuntimeDefault, ""), off, "", false},
		{"AppArmor off: Localhost", sp(runtimeapi.SecurityProfile_Localhost, "my profile"), off, "", true},
	} {
		got, err := appArmorFor("c", tc.sc, tc.host)
		if tc.invalid {
			if !errdefs.IsInvalid(err) {
				t.Errorf("%s: got %q, %v; want Invalid", tc.name, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

// A privileged container gets no AppArmor profile, even the default.
func TestAppArmorPrivilegedUnconfined(t *testing.T) {
	g, err := Generate(&SpecOptions{
		ID: "c", Pod: testPod(), Host: &Host{AppArmor: true, Capabilities: DefaultCapabilities},
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Command: []string{"true"},
			Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{Privileged: true}},
		},
	})
	if err != nil {
		t.Skipf("privileged spec on this machine: %v", err)
	}
	if g.Spec.Process.ApparmorProfile != "" {
		t.Errorf("privileged container: AppArmor profile %q, want none", g.Spec.Process.ApparmorProfile)
	}
}

// The default profile's text: its name, the rules that matter, and (where
// apparmor_parser is installed) that the parser accepts it. Loading it
// into a kernel needs AppArmor, which this test machine does not have.
func TestDefaultAppArmorProfileText(t *testing.T) {
	text, err := AppArmorProfileText(DefaultAppArmorProfile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"profile berth-default flags=(attach_disconnected,mediate_deleted) {",
		"deny mount,",
		"signal (send,receive) peer=berth-default,",
		"deny @{PROC}/sysrq-trigger rwklx,",
		"deny /sys/kernel/{debug,security,tracing}/** rwklx,",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("default profile lacks %q:\n%s", want, text)
		}
	}
	parser, err := exec.LookPath("apparmor_parser")
	if err != nil {
		t.Skip("apparmor_parser is not installed: the profile's syntax is not checked")
	}
	// -Q: parse and compile, do not load; -K: no cache.
	cmd := exec.Command(parser, "-QK", "-o", os.DevNull)
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("apparmor_parser rejects the default profile: %v\n%s", err, out)
	}
}
