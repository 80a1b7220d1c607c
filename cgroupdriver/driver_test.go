package cgroupdriver

import (
	"strings"
	"testing"
)

func TestOf(t *testing.T) {
	for in, want := range map[string]Driver{
		"/kubepods/besteffort/pod1":        Cgroupfs,
		"/berth":                           Cgroupfs,
		"kubepods-besteffort-pod1.slice":   Systemd,
		"berth.slice":                      Systemd,
		"-.slice":                          Systemd,
		"/kubepods.slice/kubepods-a.slice": Cgroupfs, // an expanded path is a path
		"":                                 Cgroupfs,
	} {
		if got := Of(in); got != want {
			t.Errorf("Of(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestValidateParent(t *testing.T) {
	for _, tc := range []struct {
		d     Driver
		p     string
		valid bool
	}{
		{Cgroupfs, "/kubepods/besteffort/pod1", true},
		{Cgroupfs, "kubepods/pod1", false},
		{Cgroupfs, "/kubepods/../etc", false},
		{Cgroupfs, "kubepods-besteffort-pod1.slice", false},
		{Systemd, "kubepods-besteffort-pod1_2_3.slice", true},
		{Systemd, "-.slice", true},
		{Systemd, "/kubepods/besteffort/pod1", false},
		{Systemd, "kubepods--x.slice", false},
		{Systemd, "-kubepods.slice", false},
		{Systemd, "kubepods.scope", false},
		{Systemd, "kube pods.slice", false},
		{Systemd, "kubepods-\x00.slice", false},
		{Systemd, strings.Repeat("a", 250) + ".slice", false},
	} {
		err := tc.d.ValidateParent(tc.p)
		if (err == nil) != tc.valid {
			t.Errorf("%s.ValidateParent(%q) = %v, want valid=%v", tc.d, tc.p, err, tc.valid)
		}
		if err != nil && !strings.Contains(err.Error(), string(tc.d)) {
			t.Errorf("%s.ValidateParent(%q): error %q does not name the driver", tc.d, tc.p, err)
		}
	}
}

// critest names its pods' parent /test.slice under the systemd driver.
func TestCanonicalParent(t *testing.T) {
	for _, tc := range []struct {
		d     Driver
		p     string
		want  string
		valid bool
	}{
		{Systemd, "/test.slice", "test.slice", true},
		{Systemd, "/kubepods.slice/kubepods-besteffort.slice", "kubepods-besteffort.slice", true},
		{Systemd, "kubepods-besteffort-pod1.slice", "kubepods-besteffort-pod1.slice", true},
		// Not where systemd puts a slice of that name: refused, not moved.
		{Systemd, "/other.slice/kubepods.slice", "/other.slice/kubepods.slice", false},
		{Systemd, "/kubepods/besteffort/pod1", "/kubepods/besteffort/pod1", false},
		{Cgroupfs, "/test.slice", "/test.slice", true},
	} {
		got := tc.d.Canonical(tc.p)
		if got != tc.want {
			t.Errorf("%s.Canonical(%q) = %q, want %q", tc.d, tc.p, got, tc.want)
		}
		if err := tc.d.ValidateParent(got); (err == nil) != tc.valid {
			t.Errorf("%s.ValidateParent(%q) = %v, want valid=%v", tc.d, got, err, tc.valid)
		}
	}
}

func TestPodAndContainerNames(t *testing.T) {
	for _, tc := range []struct {
		parent, pod, cgroupsPath, podPath, ctrPath string
	}{
		{"/berth", "/berth/pod-abc", "/berth/pod-abc/berth-c1", "/berth/pod-abc", "/berth/pod-abc/berth-c1"},
		{"berth.slice", "berth-podabc.slice", "berth-podabc.slice:berth:c1",
			"/berth.slice/berth-podabc.slice", "/berth.slice/berth-podabc.slice/berth-c1.scope"},
		{"kubepods-burstable.slice", "kubepods-burstable-podabc.slice", "kubepods-burstable-podabc.slice:berth:c1",
			"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podabc.slice",
			"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podabc.slice/berth-c1.scope"},
		{"-.slice", "podabc.slice", "podabc.slice:berth:c1", "/podabc.slice", "/podabc.slice/berth-c1.scope"},
	} {
		pod := PodCgroup(tc.parent, "abc")
		if pod != tc.pod {
			t.Errorf("PodCgroup(%q) = %q, want %q", tc.parent, pod, tc.pod)
			continue
		}
		if got := ContainerCgroupsPath(pod, "c1"); got != tc.cgroupsPath {
			t.Errorf("ContainerCgroupsPath(%q) = %q, want %q", pod, got, tc.cgroupsPath)
		}
		if got, err := Path(pod); err != nil || got != tc.podPath {
			t.Errorf("Path(%q) = %q, %v, want %q", pod, got, err, tc.podPath)
		}
		if got, err := ContainerPath(pod, "c1"); err != nil || got != tc.ctrPath {
			t.Errorf("ContainerPath(%q) = %q, %v, want %q", pod, got, err, tc.ctrPath)
		}
	}
	if got := ContainerCgroupsPath("", "c1"); got != "/berth-c1" {
		t.Errorf("ContainerCgroupsPath of no pod cgroup = %q", got)
	}
	if _, err := Path("a--b.slice"); err == nil {
		t.Error("Path of a malformed slice: no error")
	}
}

func TestConfig(t *testing.T) {
	c, err := Config("kubepods-besteffort-podabc.slice", nil)
	if err != nil {
		t.Fatal(err)
	}
	// As kubelet describes its pod slices: the name, and the slice it
	// is inside (from the name) as the parent.
	if !c.Systemd || c.Name != "kubepods-besteffort-podabc.slice" || c.Parent != "kubepods-besteffort.slice" || c.Path != "" || c.Resources == nil {
		t.Errorf("slice config = %+v", c)
	}
	if c, _ := Config("berth.slice", nil); c.Parent != "-.slice" {
		t.Errorf("top-level slice parent = %q, want -.slice", c.Parent)
	}
	c, err = Config("/berth/pod-abc", nil)
	if err != nil || c.Systemd || c.Path != "/berth/pod-abc" {
		t.Errorf("cgroupfs config = %+v, %v", c, err)
	}
	if _, err := Config("a--b.slice", nil); err == nil {
		t.Error("Config of a malformed slice: no error")
	}
}

func TestResolve(t *testing.T) {
	for _, tc := range []struct {
		name       string
		configured Driver
		node       Node
		want       Driver
		why        string
	}{
		{"config wins", Cgroupfs, Node{SystemdInit: true, Unit: "berthd.service"}, Cgroupfs, "config"},
		{"config systemd", Systemd, Node{}, Systemd, "config"},
		{"systemd node, in a unit", "", Node{SystemdInit: true, Unit: "berthd.service"}, Systemd, "berthd.service"},
		{"systemd node, not in a unit", "", Node{SystemdInit: true}, Cgroupfs, "does not run in a systemd unit"},
		{"no systemd, INVOCATION_ID leaked", "", Node{Unit: "(INVOCATION_ID set)"}, Cgroupfs, "PID 1 is not systemd"},
		{"pods of an older berthd", "", Node{SystemdInit: true, Unit: "berthd.service", HasPods: true}, Cgroupfs, "earlier berthd"},
		{"pods made with systemd", "", Node{Recorded: Systemd, HasPods: true}, Systemd, "existing pods"},
		{"record without pods is not sticky", "", Node{Recorded: Cgroupfs, SystemdInit: true, Unit: "berthd.service"}, Systemd, "berthd.service"},
		{"config over old pods", Systemd, Node{Recorded: Cgroupfs, HasPods: true}, Systemd, "keep their cgroups"},
	} {
		got, why := Resolve(tc.configured, tc.node)
		if got != tc.want || !strings.Contains(why, tc.why) {
			t.Errorf("%s: Resolve = %s (%s), want %s (%q)", tc.name, got, why, tc.want, tc.why)
		}
	}
}

func TestDetectAndRecord(t *testing.T) {
	root := t.TempDir()
	n, err := Detect(root)
	if err != nil || n.Recorded != "" || n.HasPods {
		t.Fatalf("Detect of an empty root = %+v, %v", n, err)
	}
	if err := Record(root, Systemd); err != nil {
		t.Fatal(err)
	}
	n, err = Detect(root)
	if err != nil || n.Recorded != Systemd {
		t.Fatalf("Detect after Record = %+v, %v", n, err)
	}
}
