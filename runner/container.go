package runner

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/sys/userns"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	"github.com/opencontainers/runtime-spec/specs-go"
)

var errEmptyID = errors.New("container id cannot be empty")

// loadContainer opens the container named by the first argument from the
// state directory (--root).
func loadContainer(inv *invocation) (*libcontainer.Container, error) {
	id := ""
	if len(inv.args) > 0 {
		id = inv.args[0]
	}
	if id == "" {
		return nil, errEmptyID
	}
	return libcontainer.Load(inv.Root(), id)
}

// newContainer converts the spec to a libcontainer config (specconv does the
// whole runtime-spec: namespaces by type or path, id mappings, mounts and
// propagation, masked and readonly paths, devices, cgroup resources, seccomp,
// hooks, sysctls, rlimits...) and creates the container's state directory.
func newContainer(inv *invocation, id string, spec *specs.Spec) (*libcontainer.Container, error) {
	rootlessCg, err := rootlessCgroups(inv)
	if err != nil {
		return nil, err
	}
	config, err := containerConfig(id, spec, configOpts{
		noPivot:       inv.flags.Bool("no-pivot"),
		noNewKeyring:  inv.flags.Bool("no-new-keyring"),
		rootlessCg:    rootlessCg,
		systemdCgroup: inv.global.Bool("systemd-cgroup"),
	})
	if err != nil {
		return nil, err
	}
	return libcontainer.Create(inv.Root(), id, config)
}

// configOpts are the command line's choices that shape a container's
// libcontainer config.
type configOpts struct {
	noPivot, noNewKeyring, rootlessCg bool
	// systemdCgroup is the global --systemd-cgroup: the spec's
	// cgroupsPath is "slice:prefix:name" and the container's cgroup a
	// systemd scope made through D-Bus (as runc's).
	systemdCgroup bool
}

// containerConfig is the libcontainer config of a spec; its Cgroups part is
// what the cgroup manager (fs on v1, fs2 on v2, systemd with
// --systemd-cgroup) applies. The choice is kept in the container's state,
// so later commands (update, delete) use the same manager.
func containerConfig(id string, spec *specs.Spec, o configOpts) (*configs.Config, error) {
	return specconv.CreateLibcontainerConfig(&specconv.CreateOpts{
		CgroupName:       id,
		UseSystemdCgroup: o.systemdCgroup,
		NoPivotRoot:      o.noPivot,
		NoNewKeyring:     o.noNewKeyring,
		Spec:             spec,
		RootlessEUID:     os.Geteuid() != 0,
		RootlessCgroups:  o.rootlessCg,
	})
}

// rootlessCgroups decides, like runc's --rootless, whether cgroup permission
// errors are ignored: "auto" means yes for a non-root user or root inside a
// user namespace.
func rootlessCgroups(inv *invocation) (bool, error) {
	b, err := parseBoolOrAuto(inv.global.String("rootless"))
	if err != nil {
		return false, err
	}
	if b != nil {
		return *b, nil
	}
	if os.Geteuid() != 0 {
		return true, nil
	}
	return userns.RunningInUserNS(), nil
}

// removeStateDir removes what an aborted create left without a state.json.
func removeStateDir(root, id string) error {
	return os.RemoveAll(filepath.Join(root, id))
}

// parseBoolOrAuto returns nil for "" or "auto".
func parseBoolOrAuto(s string) (*bool, error) {
	if s == "" || strings.EqualFold(s, "auto") {
		return nil, nil
	}
	b, err := strconv.ParseBool(s)
	return &b, err
}
