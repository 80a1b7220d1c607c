package oci

import (
	"strings"

	"github.com/moby/profiles/seccomp"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// seccompFor picks the container's seccomp filter. RuntimeDefault is
// moby's default profile (the one Docker, containerd and CRI-O ship),
// filtered for the container's capabilities; a request that names no
// profile gets it too, as CRI-O does. Unconfined is no filter; Localhost
// reads the profile (OCI or Docker format) from the node.
func seccompFor(sc *runtimeapi.LinuxContainerSecurityContext, s *rspec.Spec) (*rspec.LinuxSeccomp, error) {
	typ, ref := runtimeapi.SecurityProfile_RuntimeDefault, ""
	if p := sc.GetSeccomp(); p != nil {
		typ, ref = p.GetProfileType(), p.GetLocalhostRef()
	} else {
		// The deprecated string form.
		switch p := sc.GetSeccompProfilePath(); {
		case p == "unconfined":
			typ = runtimeapi.SecurityProfile_Unconfined
		case strings.HasPrefix(p, "localhost/"):
			typ, ref = runtimeapi.SecurityProfile_Localhost, p
		case p == "", p == "runtime/default", p == "docker/default":
		default:
			return nil, invalidf("seccomp profile path %q is not runtime/default, unconfined or localhost/<path>", p)
		}
	}
	switch typ {
	case runtimeapi.SecurityProfile_Unconfined:
		return nil, nil
	case runtimeapi.SecurityProfile_Localhost:
		body, err := seccompProfilePath(ref)
		if err != nil {
			return nil, err
		}
		prof, err := seccomp.LoadProfile(body, s)
		if err != nil {
			return nil, invalidf("seccomp profile %s: %v", ref, err)
		}
		return prof, nil
	case runtimeapi.SecurityProfile_RuntimeDefault:
		return seccomp.GetDefaultProfile(s)
	default:
		return nil, invalidf("seccomp profile type %v is not known", typ)
	}
}
