package testimage

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// ConfOptions describe a containers registries.conf (v2 format) for tests.
type ConfOptions struct {
	// Insecure hosts ("127.0.0.1:PORT") are spoken to over plain HTTP.
	Insecure []string
	// Search are the unqualified-search registries tried for short names.
	Search []string
	// Rewrites map a prefix ("docker.io") to a location
	// ("127.0.0.1:PORT"): every pull of the prefix goes to the location
	// instead, with no fallback to the real one, so no test can reach
	// the internet.
	Rewrites map[string]string
	// Mirrors map a prefix to mirror locations tried, in order, before
	// the prefix's own location (which should be a local registry too).
	Mirrors map[string][]string
	// Blocked prefixes refuse every pull.
	Blocked []string
	// Aliases map short names to full references ("[aliases]").
	Aliases map[string]string
	// ShortNameMode is "permissive" (default) or "disabled".
	ShortNameMode string
}

// RegistriesConf renders o as registries.conf text.
func RegistriesConf(o ConfOptions) string {
	var b strings.Builder
	mode := o.ShortNameMode
	if mode == "" {
		mode = "permissive"
	}
	fmt.Fprintf(&b, "short-name-mode = %q\n", mode)
	fmt.Fprintf(&b, "unqualified-search-registries = [%s]\n\n", quoteList(o.Search))
	insecure := map[string]bool{}
	for _, h := range o.Insecure {
		insecure[h] = true
	}
	blocked := map[string]bool{}
	for _, h := range o.Blocked {
		blocked[h] = true
	}
	prefixes := map[string]bool{}
	for p := range insecure {
		prefixes[p] = true
	}
	for p := range blocked {
		prefixes[p] = true
	}
	for p := range o.Rewrites {
		prefixes[p] = true
	}
	for p := range o.Mirrors {
		prefixes[p] = true
	}
	var sorted []string
	for p := range prefixes {
		sorted = append(sorted, p)
	}
	sort.Strings(sorted)
	for _, p := range sorted {
		loc := p
		if r, ok := o.Rewrites[p]; ok {
			loc = r
		}
		fmt.Fprintf(&b, "[[registry]]\nprefix = %q\nlocation = %q\ninsecure = %t\nblocked = %t\n\n",
			p, loc, insecure[p] || insecure[loc], blocked[p])
		for _, m := range o.Mirrors[p] {
			fmt.Fprintf(&b, "[[registry.mirror]]\nlocation = %q\ninsecure = %t\n\n", m, insecure[m])
		}
	}
	if len(o.Aliases) > 0 {
		b.WriteString("[aliases]\n")
		var names []string
		for n := range o.Aliases {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(&b, "%q = %q\n", n, o.Aliases[n])
		}
	}
	return b.String()
}

// StandIn is a registries.conf for a lane whose suite pulls from public
// registries: each upstream host is rewritten, by location and never as a
// mirror (so nothing falls back to the real host), to the same path below
// this registry ("<r.Host>/<upstream>/..."), spoken to over plain HTTP;
// short names search docker.io, as a node's default does.
func (r *Registry) StandIn(upstreams []string) string {
	rewrites := map[string]string{}
	plainHTTP := []string{r.Host}
	for _, u := range upstreams {
		rewrites[u] = r.Host + "/" + u
		plainHTTP = append(plainHTTP, rewrites[u])
	}
	return RegistriesConf(ConfOptions{Insecure: plainHTTP, Search: []string{"docker.io"}, Rewrites: rewrites})
}

func quoteList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// WriteRegistriesConf writes RegistriesConf(o) to a temp file and returns
// its path. If a location in Rewrites is insecure it is marked so for
// the rewritten prefix too.
func WriteRegistriesConf(t testing.TB, o ConfOptions) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "registries.conf")
	if err := os.WriteFile(p, []byte(RegistriesConf(o)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// DaemonTOML writes a registries.conf in which this registry is insecure
// (plain HTTP) and returns the berth.toml lines that make berthd use it,
// for framework.Options.ConfigTOML. It opens an [image] table: put other
// tables after it, not bare keys.
//
//	d := framework.StartDaemon(t, framework.Options{ConfigTOML: reg.DaemonTOML(t)})
//	_, ref := reg.Push(t, "busybox:1", img)
//	d.Image.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
func (r *Registry) DaemonTOML(t testing.TB) string {
	t.Helper()
	conf := WriteRegistriesConf(t, ConfOptions{Insecure: []string{r.Host}})
	return fmt.Sprintf("\n[image]\nregistries_conf = %q\n", conf)
}
