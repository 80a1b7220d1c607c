package storage

import (
	"os"
	"path/filepath"
	"testing"

	"go.podman.io/image/v5/types"

	"github.com/berth-cri/berth/errdefs"
)

// FuzzPullImageValidation feeds what a PullImage request carries (the
// image reference and the credentials) to what runs before any registry
// is asked: credential decoding, reference parsing and short-name
// resolution. It must never panic; what it refuses is InvalidArgument
// (or FailedPrecondition, from the node's short-name policy). The seeds
// run as unit tests in `go test`; `go test -fuzz FuzzPullImageValidation
// ./storage/` explores further.
func FuzzPullImageValidation(f *testing.F) {
	for _, s := range []struct{ ref, user, pass, auth, server string }{
		{"busybox", "", "", "", ""},
		{"docker://quay.io/a/b:1@sha256:0000000000000000000000000000000000000000000000000000000000000000", "u", "p", "", "quay.io"},
		{"sha256:0000000000000000000000000000000000000000000000000000000000000000", "", "", "", ""},
		{"cafe", "", "", "dTpw", ""},
		{"../../etc/passwd", "", "", "not base64!", ""},
		{"oci-archive:///etc/shadow", "", "", "Og==", "https://index.docker.io/v1/"},
		{"UPPER/case:tag", "", "", "", "*.evil"},
		{"a:b:c@d", "\x00", "\n", "", "\x00"},
	} {
		f.Add(s.ref, s.user, s.pass, s.auth, s.server)
	}
	conf := filepath.Join(f.TempDir(), "registries.conf")
	if err := os.WriteFile(conf, []byte("unqualified-search-registries = [\"a.example\", \"b.example\"]\nshort-name-mode = \"permissive\"\n[aliases]\n\"nick\" = \"c.example/real/nick\"\n"), 0o644); err != nil {
		f.Fatal(err)
	}
	aliases := filepath.Join(f.TempDir(), "aliases.conf")
	f.Fuzz(func(t *testing.T, ref, user, pass, auth, server string) {
		sys := &types.SystemContext{SystemRegistriesConfPath: conf, SystemRegistriesConfDirPath: conf + ".d", UserShortNameAliasConfPath: aliases}
		a := Auth{Username: user, Password: pass, Auth: auth, ServerAddress: server}
		if err := a.apply(sys); err != nil {
			want(t, "credentials", err)
			return
		}
		cands, err := pullCandidates(sys, ref)
		if err != nil {
			want(t, "reference", err)
			return
		}
		if len(cands) == 0 {
			t.Fatalf("%q: no candidate and no error", ref)
		}
		for _, n := range cands {
			// Credentials go to at most the registry they name.
			if got := a.forRegistry(registryOf(n), len(cands)); got != a && got != (Auth{}) {
				t.Fatalf("forRegistry made up credentials: %+v", got)
			}
		}
		parseIDPrefix(ref)
	})
}

func want(t *testing.T, what string, err error) {
	t.Helper()
	if k := errdefs.KindOf(err); k != errdefs.KindInvalid && k != errdefs.KindFailedPrecondition {
		t.Fatalf("%s refused with kind %v, not InvalidArgument: %v", what, k, err)
	}
}
