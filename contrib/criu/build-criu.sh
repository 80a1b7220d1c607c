#!/usr/bin/env bash
# Builds CRIU (the checkpoint/restore tool berth-runner and runc call for
# CheckpointContainer) from the upstream tarball in Debian 13's (trixie)
# source package, into $CACHE/criu-$VERSION/criu; prints its path.
#
# Debian 12's criu 3.17.1 fails on recent kernels (on 6.18 `criu check`
# stops at "vdso: Unexpected rt vDSO area bounds"); trixie's 4.1.1 passes
# it. The source is fetched as contrib/debian-trixie-src.sh says: apt
# through a private sources list, nothing of trixie installed. Only the
# upstream tarball is used (Debian's patches concern its packaging and
# documentation, and the mirror CI reaches may not carry the .debian.tar).
#
# The result is rebuilt when this script changes (its hash is kept beside
# the binary). Build dependencies, from Debian 12 (see .ci/run):
#   libbsd-dev libcap-dev libnet1-dev libnftables-dev libnl-3-dev
#   libprotobuf-c-dev libprotobuf-dev protobuf-c-compiler protobuf-compiler
#   libgnutls28-dev uuid-dev pkg-config gcc make xz-utils
set -euo pipefail
CACHE=${1:?usage: build-criu.sh CACHE}
want=4.1.1
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
recipe=$(sha256sum "$0" | cut -c1-16)
out=$CACHE/criu-$want
if [ -x "$out/criu" ] && [ "$(cat "$out/recipe" 2>/dev/null)" = "$recipe" ]; then
	echo "$out/criu"
	exit 0
fi

. "$(dirname "$0")/../debian-trixie-src.sh"
trixie_src "$CACHE" criu "$want"
version=$(apt-cache "${apt_opts[@]}" showsrc criu | sed -n "s/^Version: \($want-.*\)/\1/p" | sort -V | tail -1)
[ -n "$version" ] || { echo "build-criu: want criu $want source in trixie, apt has none" >&2; exit 1; }

work=$(mktemp -d "$CACHE/criu-src.XXXXXX")
trap 'rm -rf "$work"' EXIT
# --download-only fetches the .dsc, the upstream tarball and Debian's
# tarball; only the upstream one is needed, so a missing Debian part is
# not an error as long as the upstream tarball came.
(cd "$work" && apt-get source -qq --download-only -o APT::Sandbox::User=root "${apt_opts[@]}" "criu=$version" >&2) || true
orig=$work/criu_$want.orig.tar.xz
[ -s "$orig" ] || { echo "build-criu: apt-get source gave no upstream tarball for criu $version" >&2; exit 1; }
# apt checked the download against the Sources index; check again here,
# since the failure above is tolerated.
sum=$(apt-cache "${apt_opts[@]}" showsrc criu | awk -v v="$version" -v f="criu_$want.orig.tar.xz" '
	/^Version: / { in_v = ($2 == v) }
	/^[^ ]/ { in_sums = ($1 == "Checksums-Sha256:") }
	in_v && in_sums && $3 == f { print $1; exit }')
[ -n "$sum" ] && echo "$sum  $orig" | sha256sum -c --quiet - >&2 ||
	{ echo "build-criu: criu_$want.orig.tar.xz does not match trixie's Sources index" >&2; exit 1; }
tar -xf "$orig" -C "$work"
tree=$work/criu-$want
[ -d "$tree" ] || { echo "build-criu: $orig holds no criu-$want tree" >&2; exit 1; }
make -C "$tree" -s -j2 criu >&2
"$tree/criu/criu" --version | grep -q "^Version: $want\$" ||
	{ echo "build-criu: the built binary is not criu $want" >&2; exit 1; }
rm -rf "$out.tmp" && mkdir -p "$out.tmp"
install -m 0755 "$tree/criu/criu" "$out.tmp/criu"
echo "$recipe" >"$out.tmp/recipe"
rm -rf "$out" && mv "$out.tmp" "$out"
echo "$out/criu"
