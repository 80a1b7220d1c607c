package storage

import (
	"fmt"
	"regexp"
	"strings"

	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/shortnames"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"go.podman.io/image/v5/types"

	"github.com/berth-cri/berth/errdefs"
)

var (
	fullID = regexp.MustCompile(`^(sha256:)?([a-f0-9]{64})$`)
	// idPrefix is an abbreviated image ID: with "sha256:" at least 3 hex
	// digits, without it at least 12 (what crictl and docker print). A
	// shorter bare hex string ("cafe", "beef") is a name, never an ID:
	// otherwise a pod asking for image "cafe" would run whatever local
	// image's ID happens to start with those letters.
	idPrefix = regexp.MustCompile(`^(?:sha256:([a-f0-9]{3,63})|([a-f0-9]{12,63}))$`)
)

// parseIDPrefix returns the hex digits of an abbreviated image ID and
// whether the caller wrote "sha256:" (then nothing else can match).
func parseIDPrefix(s string) (hex string, explicit, ok bool) {
	m := idPrefix.FindStringSubmatch(s)
	switch {
	case m == nil:
		return "", false, false
	case m[1] != "":
		return m[1], true, true
	}
	return m[2], false, true
}

// parseID returns the 64-hex image ID if s is one, with or without
// "sha256:".
func parseID(s string) (string, bool) {
	m := fullID.FindStringSubmatch(s)
	if m == nil {
		return "", false
	}
	return m[2], true
}

// FormatID is the CRI form of a store image ID: "sha256:<hex>".
func FormatID(id string) string {
	if strings.HasPrefix(id, "sha256:") {
		return id
	}
	return "sha256:" + id
}

// parseNamed parses a reference as a person or kubelet writes it
// ("busybox", "busybox:1.36", "quay.io/x/y@sha256:..."); an optional
// "docker://" prefix is accepted, as crictl users type it. The result is
// not normalised: short names stay short.
func parseNamed(input string) (string, error) {
	s := strings.TrimSpace(input)
	s = strings.TrimPrefix(s, "docker://")
	if s == "" {
		return "", errdefs.Invalidf("image reference is empty")
	}
	if strings.Contains(s, "://") {
		return "", errdefs.Invalidf("image reference %q: only registry references are supported (no transport prefix)", input)
	}
	if _, err := reference.ParseNormalizedNamed(s); err != nil {
		return "", errdefs.Invalidf("image reference %q is malformed: %v", input, err)
	}
	return s, nil
}

// stripTagIfDigested turns name:tag@digest into name@digest: the digest
// decides, and containers/image refuses references with both.
func stripTagIfDigested(n reference.Named) reference.Named {
	c, digested := n.(reference.Canonical)
	if _, tagged := n.(reference.NamedTagged); tagged && digested {
		if out, err := reference.WithDigest(reference.TrimNamed(n), c.Digest()); err == nil {
			return out
		}
	}
	return n
}

// pullCandidates resolves what the caller asked for to the fully
// qualified references to try, in order:
//
//   - a fully qualified name is itself (with ":latest" if untagged);
//   - a short name with an alias in registries.conf is the alias;
//   - a short name with unqualified-search registries is tried in each
//     (short-name-mode "enforcing" with several and no TTY is an error,
//     as in Podman: configure "permissive" or "disabled" for a node);
//   - otherwise a short name is on Docker Hub, as kubelet, crictl and
//     containerd expect: busybox -> docker.io/library/busybox:latest.
func pullCandidates(sys *types.SystemContext, input string) ([]reference.Named, error) {
	if _, ok := parseID(strings.TrimSpace(input)); ok {
		return nil, errdefs.Invalidf("image reference %q is an image ID: pull by name or digest", input)
	}
	name, err := parseNamed(input)
	if err != nil {
		return nil, err
	}
	if shortnames.IsShortName(name) {
		useHub, err := shortNameGoesToHub(sys, name)
		if err != nil {
			return nil, err
		}
		if useHub {
			n, _ := reference.ParseNormalizedNamed(name) // validated above
			return []reference.Named{stripTagIfDigested(reference.TagNameOnly(n))}, nil
		}
	}
	resolved, err := shortnames.Resolve(sys, name)
	if err != nil {
		return nil, errdefs.FailedPreconditionf("resolve %q with %s: %w", input, sysregistriesv2.ConfigurationSourceDescription(sys), err)
	}
	var out []reference.Named
	for _, c := range resolved.PullCandidates {
		out = append(out, stripTagIfDigested(c.Value))
	}
	return out, nil
}

// shortNameGoesToHub reports whether a short name has neither an alias
// nor unqualified-search registries to resolve it.
func shortNameGoesToHub(sys *types.SystemContext, name string) (bool, error) {
	// Aliases are keyed by the name as written, without tag or digest.
	short := name
	if i := strings.IndexAny(short, "@"); i >= 0 {
		short = short[:i]
	}
	if i := strings.LastIndex(short, ":"); i >= 0 {
		short = short[:i]
	}
	alias, _, err := sysregistriesv2.ResolveShortNameAlias(sys, short)
	if err != nil {
		return false, errdefs.FailedPreconditionf("short-name aliases in %s: %w", sysregistriesv2.ConfigurationSourceDescription(sys), err)
	}
	if alias != nil {
		return false, nil
	}
	search, err := sysregistriesv2.UnqualifiedSearchRegistries(sys)
	if err != nil {
		return false, errdefs.FailedPreconditionf("registries configuration %s: %w", sysregistriesv2.ConfigurationSourceDescription(sys), err)
	}
	return len(search) == 0, nil
}

// localCandidates are the names under which an image asked for by input
// may be stored, most likely first: the name itself when qualified; for
// a short name its alias, the unqualified-search registries and Docker
// Hub (whichever of them a pull could have used), and localhost/.
func localCandidates(sys *types.SystemContext, input string) ([]reference.Named, error) {
	name, err := parseNamed(input)
	if err != nil {
		return nil, err
	}
	var out []reference.Named
	seen := map[string]bool{}
	add := func(n reference.Named) {
		n = stripTagIfDigested(reference.TagNameOnly(n))
		if !seen[n.String()] {
			seen[n.String()] = true
			out = append(out, n)
		}
	}
	if !shortnames.IsShortName(name) {
		n, _ := reference.ParseNormalizedNamed(name)
		add(n)
		return out, nil
	}
	if local, err := shortnames.ResolveLocally(sys, name); err == nil {
		for _, n := range local {
			add(n)
		}
	}
	n, _ := reference.ParseNormalizedNamed(name)
	add(n) // docker.io/library/...
	return out, nil
}

// registryOf is the registry host of a reference, for messages.
func registryOf(n reference.Named) string { return reference.Domain(n) }

// checkBlocked refuses a reference whose registry registries.conf blocks,
// with PermissionDenied (containers/image's own error has no type).
func checkBlocked(sys *types.SystemContext, n reference.Named) error {
	reg, err := sysregistriesv2.FindRegistry(sys, n.Name())
	if err != nil {
		return errdefs.FailedPreconditionf("registries configuration %s: %w", sysregistriesv2.ConfigurationSourceDescription(sys), err)
	}
	if reg != nil && reg.Blocked {
		return errdefs.PermissionDenied(fmt.Errorf("registry %s is blocked in %s", registryOf(n), sysregistriesv2.ConfigurationSourceDescription(sys)))
	}
	return nil
}
