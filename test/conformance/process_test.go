package conformance

import (
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

func TestHostnameAndDomainname(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *ociRuntime) {
		c := newContainer(t, rt)
		c.spec.Hostname = "berth-host"
		want := "berth-host\nberth.example\n"
		if rt.isRuncBefore(1, 2) {
			t.Log("runc before 1.2 lacks domainname: checking the hostname only")
			want = "berth-host\n(none)\n"
		} else {
			c.spec.Domainname = "berth.example"
		}
		out := c.sh("hostname; cat /proc/sys/kernel/domainname")
		if out != want {
			t.Fatalf("got %q, want %q", out, want)
		}
	})
}

func TestPid1(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *ociRuntime) {
		c := newContainer(t, rt)
		out := c.sh(`echo $$; head -1 /proc/1/status; echo end`)
		if want := "1\nName:\tsh\nend\n"; out != want {
			t.Fatalf("got %q, want %q (the process must be pid 1)", out, want)
		}
	})
}

func TestUserAndGroups(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *ociRuntime) {
		c := newContainer(t, rt)
		umask := uint32(0o027)
		c.spec.Process.User = specs.User{UID: 1000, GID: 1001, AdditionalGids: []uint32{10, 20}, Umask: &umask}
		out := c.sh("cat /proc/self/status; echo umask=$(umask)")
		for field, want := range map[string]string{
			"Uid":    "1000\t1000\t1000\t1000",
			"Gid":    "1001\t1001\t1001\t1001",
			"Groups": "10 20",
		} {
			if got := mustField(t, out, field); got != want {
				t.Errorf("%s: got %q, want %q", field, got, want)
			}
		}
		if !strings.Contains(out, "umask=0027") {
			t.Errorf("umask: want 0027 in %q", out[strings.LastIndex(out, "umask"):])
		}
	})
}

func TestCapabilities(t *testing.T) {
	check := func(t *testing.T, out string, want map[string]uint64) {
		t.Helper()
		for field, w := range want {
			got := parseHex(t, mustField(t, out, field))
			if got != w {
				t.Errorf("%s = %016x %v, want %016x %v", field, got, capNames(got), w, capNames(w))
			}
		}
	}
	t.Run("root", func(t *testing.T) {
		forEachRuntime(t, func(t *testing.T, rt *ociRuntime) {
			c := newContainer(t, rt)
			set := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
			c.spec.Process.Capabilities = &specs.LinuxCapabilities{
				Bounding: set, Effective: set, Permitted: set, Inheritable: []string{"CAP_KILL"},
			}
			m := capMask(set...)
			check(t, c.sh("cat /proc/self/status"), map[string]uint64{
				"CapBnd": m, "CapPrm": m, "CapEff": m, "CapInh": capMask("CAP_KILL"), "CapAmb": 0,
			})
		})
	})
	t.Run("non-root-ambient", func(t *testing.T) {
		forEachRuntime(t, func(t *testing.T, rt *ociRuntime) {
			c := newContainer(t, rt)
			c.spec.Process.User = specs.User{UID: 1000, GID: 1000}
			c.spec.Process.Capabilities = &specs.LinuxCapabilities{
				Bounding:    []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"},
				Permitted:   []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"},
				Effective:   []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"},
				Inheritable: []string{"CAP_KILL", "CAP_NET_BIND_SERVICE"},
				Ambient:     []string{"CAP_NET_BIND_SERVICE"},
			}
			// After execve a non-root process keeps, in permitted and
			// effective, its ambient set only (capabilities(7)).
			check(t, c.sh("cat /proc/self/status"), map[string]uint64{
				"CapBnd": capMask("CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"),
				"CapInh": capMask("CAP_KILL", "CAP_NET_BIND_SERVICE"),
				"CapPrm": capMask("CAP_NET_BIND_SERVICE"),
				"CapEff": capMask("CAP_NET_BIND_SERVICE"),
				"CapAmb": capMask("CAP_NET_BIND_SERVICE"),
			})
		})
	})
	t.Run("all", func(t *testing.T) {
		forEachRuntime(t, func(t *testing.T, rt *ociRuntime) {
			c := newContainer(t, rt)
			host := hostCapBnd(t)
			all := capNames(host)
			c.spec.Process.Capabilities = &specs.LinuxCapabilities{Bounding: all, Effective: all, Permitted: all}
			c.spec.Process.NoNewPrivileges = false
			check(t, c.sh("cat /proc/self/status"), map[string]uint64{
				"CapBnd": host, "CapPrm": host, "CapEff": host, "CapInh": 0, "CapAmb": 0,
			})
		})
	})
}

func TestRlimits(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *ociRuntime) {
		c := newContainer(t, rt)
		c.spec.Process.Rlimits = []specs.POSIXRlimit{
			{Type: "RLIMIT_NOFILE", Soft: 512, Hard: 1024},
			{Type: "RLIMIT_CORE", Soft: 0, Hard: 0},
			{Type: "RLIMIT_NPROC", Soft: 300, Hard: 400},
		}
		out := c.sh("cat /proc/self/limits")
		for _, want := range []string{
			`Max open files\s+512\s+1024`, `Max core file size\s+0\s+0`, `Max processes\s+300\s+400`,
		} {
			if !matches(want, out) {
				t.Errorf("no %q in:\n%s", want, out)
			}
		}
	})
}

func TestEnvCwdAndNoNewPrivileges(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *ociRuntime) {
		c := newContainer(t, rt)
		c.spec.Process.Env = append(c.spec.Process.Env, "BERTH=conformance")
		c.spec.Process.Cwd = "/tmp"
		c.spec.Process.NoNewPrivileges = true
		out := c.sh("echo $BERTH; pwd; cat /proc/self/status")
		if !strings.HasPrefix(out, "conformance\n/tmp\n") {
			t.Errorf("env and cwd: got %q", out[:min(len(out), 40)])
		}
		if v := mustField(t, out, "NoNewPrivs"); v != "1" {
			t.Errorf("NoNewPrivs = %s, want 1", v)
		}
	})
}

func TestOomScoreAdjAndSysctl(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *ociRuntime) {
		c := newContainer(t, rt)
		// Raising it needs no privilege; lowering it below ours would need
		// CAP_SYS_RESOURCE, which root may lack here.
		adj := 500
		c.spec.Process.OOMScoreAdj = &adj
		c.spec.Linux.Sysctl = map[string]string{
			"net.ipv4.ip_forward":          "1",
			"kernel.shm_rmid_forced":       "1",
			"net.ipv4.ip_local_port_range": "40000 40100",
		}
		out := c.sh("cat /proc/self/oom_score_adj /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shm_rmid_forced /proc/sys/net/ipv4/ip_local_port_range")
		if want := "500\n1\n1\n40000\t40100\n"; out != want {
			t.Fatalf("got %q, want %q", out, want)
		}
	})
}
