#!/usr/bin/env bash
# Builds critest and crictl from sigs.k8s.io/cri-tools at one release,
# fetched through the Go module proxy, into $CACHE/cri-tools-$VERSION/.
# The module zip carries no vendor directory, so its dependencies come
# from the proxy too (-mod=mod). A finished build is kept: the cache is
# keyed on the version, and a rerun only checks that both binaries exist.
set -euo pipefail
VERSION=${1:?usage: build-critest.sh VERSION CACHE}
CACHE=${2:?usage: build-critest.sh VERSION CACHE}
out=$CACHE/cri-tools-$VERSION
if [ -x "$out/critest" ] && [ -x "$out/crictl" ]; then
	exit 0
fi
mod=sigs.k8s.io/cri-tools
dir=$(cd /tmp && GOFLAGS=-mod=mod go mod download -json "$mod@$VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$dir" ] || { echo "build-critest: go mod download $mod@$VERSION gave no directory" >&2; exit 1; }
mkdir -p "$CACHE"
src=$(mktemp -d "$CACHE/cri-tools-src.XXXXXX")
trap 'chmod -R u+w "$src"; rm -rf "$src"' EXIT
cp -r "$dir/." "$src/"
chmod -R u+w "$src"
mkdir -p "$out.tmp"
ldflags="-s -w -X $mod/pkg/version.Version=${VERSION#v}"
(cd "$src" && export GOFLAGS=-mod=mod CGO_ENABLED=0 &&
	go test -c -trimpath -o "$out.tmp/critest" -ldflags "$ldflags" ./cmd/critest &&
	go build -trimpath -o "$out.tmp/crictl" -ldflags "$ldflags" ./cmd/crictl)
rm -rf "$out" && mv "$out.tmp" "$out"
echo "build-critest: built critest and crictl $VERSION in $out"
