package oci

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"text/template"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// DefaultAppArmorProfile is the profile RuntimeDefault means on a node
// with AppArmor: berthd loads it at start (LoadDefaultAppArmorProfile),
// as containerd and CRI-O load theirs.
const DefaultAppArmorProfile = "berth-default"

// appArmorProfilesFile lists the profiles loaded in the kernel, one per
// line: "name (mode)". A variable so tests can point it elsewhere.
var appArmorProfilesFile = "/sys/kernel/security/apparmor/profiles"

// appArmorFor picks the AppArmor profile of an unprivileged container.
// Where AppArmor is off, the runtime default and unconfined mean nothing,
// and a named profile is an error (it cannot be honoured). Where it is
// on, RuntimeDefault is Berth's default profile and Localhost names a
// profile that must already be loaded: the runtime would otherwise fail
// late, or worse, with a message nobody reads.
func appArmorFor(id string, sc *runtimeapi.LinuxContainerSecurityContext, h *Host) (string, error) {
	typ, name := runtimeapi.SecurityProfile_RuntimeDefault, ""
	switch {
	case sc.GetApparmor() != nil:
		typ, name = sc.GetApparmor().GetProfileType(), sc.GetApparmor().GetLocalhostRef()
	case sc.GetApparmorProfile() == "unconfined":
		typ = runtimeapi.SecurityProfile_Unconfined
	case strings.HasPrefix(sc.GetApparmorProfile(), "localhost/"):
		typ, name = runtimeapi.SecurityProfile_Localhost, strings.TrimPrefix(sc.GetApparmorProfile(), "localhost/")
	case sc.GetApparmorProfile() != "" && sc.GetApparmorProfile() != "runtime/default":
		return "", invalidf("AppArmor profile %q: want runtime/default, unconfined or localhost/<name>", sc.GetApparmorProfile())
	}
	switch typ {
	case runtimeapi.SecurityProfile_Unconfined:
		return "", nil
	case runtimeapi.SecurityProfile_Localhost:
		name = strings.TrimPrefix(name, "localhost/")
		if name == "" {
			return "", invalidf("AppArmor profile: localhost profile without a name")
		}
		if !h.AppArmor {
			return "", invalidf("AppArmor profile %q: AppArmor is not enabled on this node", name)
		}
		loaded, err := appArmorProfileLoaded(name)
		if err != nil {
			return "", fmt.Errorf("AppArmor profile %q: %w", name, err)
		}
		if !loaded {
			return "", invalidf("AppArmor profile %q is not loaded on this node (load it with apparmor_parser first)", name)
		}
		return name, nil
	default:
		if !h.AppArmor {
			return "", nil
		}
		return DefaultAppArmorProfile, nil
	}
}

// appArmorProfileLoaded reports whether the kernel has a profile called
// name.
func appArmorProfileLoaded(name string) (bool, error) {
	f, err := os.Open(appArmorProfilesFile)
	if err != nil {
		return false, fmt.Errorf("list loaded AppArmor profiles: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "name (enforce)"; a name may hold spaces, the mode never does.
		line := sc.Text()
		if i := strings.LastIndex(line, " ("); i >= 0 {
			line = line[:i]
		}
		if line == name {
			return true, nil
		}
	}
	return false, sc.Err()
}

// LoadDefaultAppArmorProfile loads Berth's default profile into the
// kernel with apparmor_parser, replacing an older text of it, unless
// AppArmor is off. berthd calls it once at start.
func LoadDefaultAppArmorProfile(ctx context.Context, h *Host) error {
	if !h.AppArmor {
		return nil
	}
	text, err := AppArmorProfileText(DefaultAppArmorProfile)
	if err != nil {
		return err
	}
	// -r replaces a loaded profile of that name, -K skips the on-disk
	// cache: the text is berthd's, not a file under /etc/apparmor.d.
	cmd := exec.CommandContext(ctx, "apparmor_parser", "-Kr")
	cmd.Stdin = strings.NewReader(text)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("load AppArmor profile %s: apparmor_parser: %w: %s", DefaultAppArmorProfile, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// AppArmorProfileText is the text of Berth's default profile under name.
// It allows what a container ordinarily does (its capabilities and
// seccomp profile limit it further) and denies what the masked and
// read-only paths already hide, so a container that unmounts them or
// reaches them another way still cannot use them: kernel interfaces under
// /proc and /sys that reach beyond the container, and mounting.
func AppArmorProfileText(name string) (string, error) {
	var b strings.Builder
	if err := appArmorTemplate.Execute(&b, struct{ Name string }{name}); err != nil {
		return "", fmt.Errorf("AppArmor profile %s: %w", name, err)
	}
	return b.String(), nil
}

var appArmorTemplate = template.Must(template.New("apparmor").Parse(`#include <tunables/global>

# Berth's default profile for containers (CRI RuntimeDefault).
profile {{.Name}} flags=(attach_disconnected,mediate_deleted) {
  #include <abstractions/base>

  network,
  capability,
  file,
  umount,
  signal (receive) peer=unconfined,
  signal (send,receive) peer={{.Name}},
  ptrace (trace,read,tracedby,readby) peer={{.Name}},

  # No mounts of any kind: a container that could mount could uncover
  # what its masked paths hide.
  deny mount,

  # Kernel interfaces that reach beyond the container. Most are masked
  # or read-only in the container's mounts already; these rules hold
  # even where a mount does not.
  deny @{PROC}/sysrq-trigger rwklx,
  deny @{PROC}/{kcore,kmem,mem} rwklx,
  deny @{PROC}/{keys,timer_list,sched_debug,latency_stats,timer_stats} rwklx,
  deny @{PROC}/sys/{abi,debug,dev,fs,kernel,user,vm}/** wklx,
  deny /sys/{block,bus,class,dev,devices,module,power}/** wklx,
  deny /sys/firmware/** rwklx,
  deny /sys/kernel/{debug,security,tracing}/** rwklx,
}
`))
