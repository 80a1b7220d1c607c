//go:build tools

// Package k8s only records, for go mod tidy, the packages that
// test/node-e2e/build.sh builds: the kubelet, agnhost and ginkgo's CLI
// (the node e2e test binary, k8s.io/kubernetes/test/e2e_node, is a test
// package and cannot be imported; build.sh adds its test dependencies).
package k8s

import (
	_ "github.com/onsi/ginkgo/v2/ginkgo"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/test/images/agnhost"
)
