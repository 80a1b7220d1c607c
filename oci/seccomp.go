package oci

import (
	"strings"

	"github.com/moby/profiles/seccomp"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// seccompFor picks the container's seccomp filter. RuntimeDefault is
// moby's default profile (the one Docker, containerd and CRI-O ship),
// filtered for the container's capabilities. Unconfined is no filter;
// Localhost reads the profile (OCI or Docker format) from the node. A
// request that names no profile is unconfined, as the CRI defines it
// (kubelet always names one); defaultWhenEmpty makes it RuntimeDefault
// instead, like CRI-O's seccomp_use_default_when_empty.
func seccompFor(sc *runtimeapi.LinuxContainerSecurityContext, s *rspec.Spec, defaultWhenEmpty bool) (*rspec.LinuxSeccomp, error) {
	typ, ref := runtimeapi.SecurityProfile_Unconfined, ""
	if defaultWhenEmpty {
		typ = runtimeapi.SecurityProfile_RuntimeDefault
	}
	if p := sc.GetSeccomp(); p != nil {
		typ, ref = p.GetProfileType(), p.GetLocalhostRef()
	} else {
		// The deprecated string form.
		switch p := sc.GetSeccompProfilePath(); {
		case p == "unconfined":
			typ = runtimeapi.SecurityProfile_Unconfined
		case strings.HasPrefix(p, "localhost/"):
			typ, ref = runtimeapi.SecurityProfile_Localhost, p
		case p == "runtime/default", p == "docker/default":
			typ = runtimeapi.SecurityProfile_RuntimeDefault
		case p == "":
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
