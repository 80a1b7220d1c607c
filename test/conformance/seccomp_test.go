package conformance

import (
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

func TestSeccomp(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *ociRuntime) {
		c := newContainer(t, rt)
		eperm, exdev := uint(1), uint(18)
		c.spec.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
			Syscalls: []specs.LinuxSyscall{
				{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: &eperm},
				// chmod to 0777 only: an argument filter
				{Names: []string{"chmod"}, Action: specs.ActErrno, ErrnoRet: &exdev,
					Args: []specs.LinuxSeccompArg{{Index: 1, Value: 0o777, Op: specs.OpEqualTo}}},
				{Names: []string{"fchmodat"}, Action: specs.ActErrno, ErrnoRet: &exdev,
					Args: []specs.LinuxSeccompArg{{Index: 2, Value: 0o777, Op: specs.OpEqualTo}}},
			},
		}
		out := c.sh(`grep -E '^Seccomp:' /proc/self/status
			mkdir /tmp/d 2>&1 || true
			touch /tmp/f; chmod 755 /tmp/f && echo chmod755:ok; chmod 777 /tmp/f 2>&1 || true`)
		for _, want := range []string{"Seccomp:\t2", "Operation not permitted", "chmod755:ok", "Invalid cross-device link"} {
			if !strings.Contains(out, want) {
				t.Errorf("want %q in:\n%s", want, out)
			}
		}
	})
}

func TestSeccompKill(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *ociRuntime) {
		c := newContainer(t, rt)
		c.spec.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Syscalls:      []specs.LinuxSyscall{{Names: []string{"uname"}, Action: specs.ActKillProcess}},
		}
		out, code := c.runArgs("sh", "-c", "echo before; busybox uname; echo after")
		if code == 0 || strings.Contains(out, "after") && code == 0 {
			t.Fatalf("uname was not killed: exit %d, %q", code, out)
		}
	})
}
