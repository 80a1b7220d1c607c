package oci

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/moby/sys/user"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
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
	passwd, err := readImageFile(o.Rootfs, "/etc/passwd")
	if err != nil {
		return err
	}
	group, err := readImageFile(o.Rootfs, "/etc/group")
	if err != nil {
		return err
	}
	u, err := user.GetExecUser(usr, &user.ExecUser{Home: "/"}, passwd.reader(), group.reader())
	if err != nil {
		return invalidf("user %q: %v (looked up in the image's /etc/passwd)", usr, err)
	}
	if grp != "" {
		gids, err := user.GetAdditionalGroups([]string{grp}, group.reader())
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

// maxImageFile caps what is read of a file of the image (/etc/passwd,
// /etc/group): an image is not trusted to keep them small.
const maxImageFile = 4 << 20

// imageFile is a file read from the image; nil when it has none.
type imageFile []byte

// reader is the file for moby/sys/user, which reads a nil io.Reader (not
// a reader of nothing) as "no such file".
func (f imageFile) reader() io.Reader {
	if f == nil {
		return nil
	}
	return bytes.NewReader(f)
}

// readImageFile reads name from the image's root filesystem. It resolves
// name inside rootfs (a symlink in the image cannot point it at the
// host), looks at what it found before opening it for reading (a FIFO
// would block CreateContainer for ever, a device would be read from), and
// reads at most maxImageFile bytes. A missing or unresolvable file (a
// symlink loop) is nil: numeric ids still work without it. Anything but a
// regular file, or a file too big, is Invalid.
func readImageFile(rootfs, name string) (imageFile, error) {
	if rootfs == "" {
		return nil, nil
	}
	h, err := pathrs.OpenInRoot(rootfs, name)
	if err != nil {
		return nil, nil
	}
	defer h.Close()
	fi, err := h.Stat()
	if err != nil {
		return nil, fmt.Errorf("image's %s: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, invalidf("the image's %s is not a regular file (%s)", name, fi.Mode().Type())
	}
	if fi.Size() > maxImageFile {
		return nil, invalidf("the image's %s is %d bytes, over the %d bytes Berth reads", name, fi.Size(), maxImageFile)
	}
	f, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("image's %s: %w", name, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxImageFile+1))
	if err != nil {
		return nil, fmt.Errorf("read the image's %s: %w", name, err)
	}
	if len(b) > maxImageFile {
		return nil, invalidf("the image's %s is over the %d bytes Berth reads", name, maxImageFile)
	}
	return imageFile(b), nil
}

func appendUnique(s []uint32, v uint32) []uint32 {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}
