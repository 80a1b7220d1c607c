package oci

import (
	"os"
	"slices"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/sys/user"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// User is the identity a container's process runs as. Groups holds every
// group of the process, the primary one first (what ContainerStatus
// reports and what the spec's additionalGids carry).
type User struct {
	UID    uint32   `json:"uid"`
	GID    uint32   `json:"gid"`
	Groups []uint32 `json:"groups,omitempty"`
}

// setUser resolves the process's user, group and supplemental groups from
// the request's security context and the image, looking names up in the
// image's /etc/passwd and /etc/group, and sets HOME.
func setUser(o *SpecOptions, g *Generated) error {
	sc := o.Config.GetLinux().GetSecurityContext()
	if sc.GetRunAsGroup() != nil && sc.GetRunAsUser() == nil && sc.GetRunAsUsername() == "" {
		// The CRI allows run_as_group only with a user: the image's
		// group belongs to the image's user, so a group alone is ambiguous.
		return invalidf("run_as_group %d is set without run_as_user or run_as_username", sc.GetRunAsGroup().GetValue())
	}
	usr, grp := splitUserSpec(o.Image.User)
	switch {
	case sc.GetRunAsUser() != nil:
		usr = strconv.FormatInt(sc.GetRunAsUser().GetValue(), 10)
		grp = "" // the image's group belongs to the image's user
	case sc.GetRunAsUsername() != "":
		usr, grp = sc.GetRunAsUsername(), ""
	}
	if sc.GetRunAsGroup() != nil {
		grp = strconv.FormatInt(sc.GetRunAsGroup().GetValue(), 10)
	}
	passwd, group := userFiles(o.Rootfs)
	u, err := user.GetExecUserPath(usr, &user.ExecUser{Home: "/"}, passwd, group)
	if err != nil {
		return invalidf("user %q: %v (looked up in the image's /etc/passwd)", usr, err)
	}
	if grp != "" {
		gids, err := user.GetAdditionalGroupsPath([]string{grp}, group)
		if err != nil || len(gids) != 1 {
			return invalidf("group %q: %v (looked up in the image's /etc/group)", grp, err)
		}
		u.Gid = gids[0]
	}

	groups := []uint32{uint32(u.Gid)}
	if sc.GetSupplementalGroupsPolicy() != runtimeapi.SupplementalGroupsPolicy_Strict {
		// Merge (the default): the user's memberships in the image's
		// /etc/group count too.
		for _, gid := range u.Sgids {
			groups = appendUnique(groups, uint32(gid))
		}
	}
	for _, gid := range sc.GetSupplementalGroups() {
		if gid < 0 || gid > 1<<32-2 {
			return invalidf("supplemental group %d is out of range", gid)
		}
		groups = appendUnique(groups, uint32(gid))
	}
	g.User = User{UID: uint32(u.Uid), GID: uint32(u.Gid), Groups: groups}
	g.Spec.Process.User = rspec.User{UID: g.User.UID, GID: g.User.GID, AdditionalGids: slices.Clone(groups)}

	env := newEnv(g.Spec.Process.Env)
	if _, ok := env.get("HOME"); !ok {
		home := u.Home
		if home == "" {
			home = "/"
		}
		env.set("HOME", home)
		g.Spec.Process.Env = env.list()
	}
	return nil
}

// splitUserSpec splits an image's "user[:group]".
func splitUserSpec(s string) (usr, grp string) {
	usr, grp, _ = strings.Cut(s, ":")
	return usr, grp
}

// userFiles returns the image's /etc/passwd and /etc/group resolved
// inside rootfs, so a symlink in the image cannot point them at the host.
func userFiles(rootfs string) (passwd, group string) {
	if rootfs == "" {
		return "", ""
	}
	// A missing or unresolvable file (a symlink loop) means "no names":
	// numeric ids still work.
	resolve := func(name string) string {
		p, err := securejoin.SecureJoin(rootfs, name)
		if err != nil {
			return ""
		}
		if _, err := os.Stat(p); err != nil {
			return ""
		}
		return p
	}
	return resolve("/etc/passwd"), resolve("/etc/group")
}

func appendUnique(s []uint32, v uint32) []uint32 {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}
