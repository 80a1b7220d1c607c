#!/usr/bin/env bash
# Builds Kubernetes' node e2e suite (e2e_node.test), its kubelet, the
# ginkgo CLI that runs the suite in parallel, and a static agnhost, from
# the wrapper module test/node-e2e/k8s (k8s.io/kubernetes at one release,
# its staging modules pinned to the matching v0.x), into
# $CACHE/k8s-$VERSION/. A finished build is kept: the cache is keyed on
# the release and the wrapper's go.sum, and a rerun only checks that the
# four binaries exist. Prints the directory.
#
# etcd needs no binary: the suite runs it embedded in the test binary
# (k8s.io/apiserver's etcd3 testserver).
set -euo pipefail
CACHE=${1:?usage: build.sh CACHE}
mod=$(cd "$(dirname "$0")/k8s" && pwd)
version=$(sed -n 's/^\(require\)\{0,1\}[[:space:]]*k8s.io\/kubernetes \(v[0-9.]*\)$/\2/p' "$mod/go.mod")
[ -n "$version" ] || { echo "node-e2e build: no k8s.io/kubernetes version in $mod/go.mod" >&2; exit 1; }
sum=$(cat "$mod/go.mod" "$mod/go.sum" | sha256sum | cut -c1-12)
out=$CACHE/k8s-$version-$sum
bins="e2e_node.test kubelet ginkgo agnhost"
done=1
for b in $bins; do [ -x "$out/$b" ] || done=0; done
if [ $done = 1 ]; then
	echo "$out"
	exit 0
fi
mkdir -p "$CACHE"
rm -rf "$out.tmp" && mkdir -p "$out.tmp"
# The version stamp kubelet and the apiserver report (upstream's
# hack/lib/version.sh sets the same variables).
minor=${version#v1.}; minor=${minor%%.*}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags="$ldflags -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done
# Static, as upstream builds them (CGO_ENABLED=0); -p 2 at most: the
# machines that run this are small, and the test binary alone is about
# 2,300 packages.
export CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false"
cd "$mod"
start=$(date +%s)
go build -p 2 -trimpath -ldflags "$ldflags" -o "$out.tmp/ginkgo" github.com/onsi/ginkgo/v2/ginkgo
go build -p 2 -trimpath -ldflags "$ldflags" -o "$out.tmp/agnhost" k8s.io/kubernetes/test/images/agnhost
go build -p 2 -trimpath -ldflags "$ldflags" -o "$out.tmp/kubelet" k8s.io/kubernetes/cmd/kubelet
go test -c -p 2 -trimpath -ldflags "$ldflags" -o "$out.tmp/e2e_node.test" k8s.io/kubernetes/test/e2e_node
rm -rf "$out" && mv "$out.tmp" "$out"
echo "node-e2e build: built $bins ($version) in $out in $(( $(date +%s) - start ))s" >&2
echo "$out"
