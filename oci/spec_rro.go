package oci

import (
	"errors"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// checkRecursiveReadOnly checks a recursive read-only mount as kubelet
// and critest expect: it must be read-only, and private, since a mount
// propagated into it later from the host could not be made read-only.
// The runtime gets it as the "rro" option (mount_setattr with
// MOUNT_ATTR_RDONLY and AT_RECURSIVE); the server has checked that the
// handler's runtime knows the option.
func checkRecursiveReadOnly(m *runtimeapi.Mount) error {
	if !m.GetRecursiveReadOnly() {
		return nil
	}
	if !m.GetReadonly() {
		return errors.New("recursive read-only needs readonly: true")
	}
	if m.GetPropagation() != runtimeapi.MountPropagation_PROPAGATION_PRIVATE {
		return errors.New("recursive read-only needs private propagation, not " + m.GetPropagation().String())
	}
	return nil
}
