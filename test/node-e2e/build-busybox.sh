#!/usr/bin/env bash
# Builds a static busybox 1.37 (the version of the node e2e suite's
# registry.k8s.io/e2e-test-images/busybox:1.37.0-1, which is built on the
# official busybox:1.37.0 image) the way the official image is built:
# upstream's defconfig plus CONFIG_STATIC=y, from the upstream tarball in
# Debian's source package (without Debian's patches), into
# $CACHE/busybox-$VERSION-upstream-defconfig-static/busybox; prints its path.
#
# Debian 12 carries busybox 1.35, whose sh drops environment variables
# whose names are not shell identifiers and which has no nmeter; 1.37 is
# in Debian 13 (trixie). Its source package is fetched with apt through a
# private sources list and a private package-list directory under
# $CACHE, so the host's apt configuration is neither read for it nor
# changed (nothing of trixie is installed: only its source is unpacked).
set -euo pipefail
CACHE=${1:?usage: build-busybox.sh CACHE}
want=1.37
. "$(dirname "$0")/../../contrib/debian-trixie-src.sh"
trixie_src "$CACHE" busybox "1:$want"
version=$(apt-cache "${apt_opts[@]}" showsrc busybox | sed -n 's/^Version: //p' | sort -V | tail -1)
case "$version" in "1:$want"*) ;; *) echo "build-busybox: want busybox $want source, apt has ${version:-none}" >&2; exit 1 ;; esac
# The key names the recipe too: change it when the build below changes.
out=$CACHE/busybox-${version#1:}-upstream-defconfig-static
if [ -x "$out/busybox" ]; then
	echo "$out/busybox"
	exit 0
fi
work=$(mktemp -d "$CACHE/busybox-src.XXXXXX")
trap 'rm -rf "$work"' EXIT
# Only the upstream tarball is unpacked, not Debian's patches: one of them
# (revert-9c143ce5...) makes ash drop environment variables whose names
# are not shell identifiers, which upstream's ash passes on to children
# and the suite's ConfigMap and Secret specs read (data-1=value-1).
(cd "$work" && apt-get source -qq --download-only -o APT::Sandbox::User=root "${apt_opts[@]}" "busybox=$version" >&2)
orig=$(find "$work" -maxdepth 1 -name 'busybox_*.orig.tar.*' | head -1)
[ -n "$orig" ] || { echo "build-busybox: apt-get source gave no upstream tarball" >&2; exit 1; }
tar -xf "$orig" -C "$work"
tree=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'busybox-*' | head -1)
[ -n "$tree" ] || { echo "build-busybox: $orig holds no busybox tree" >&2; exit 1; }
(
	cd "$tree"
	make -s defconfig >/dev/null
	sed -i 's/^# CONFIG_STATIC is not set$/CONFIG_STATIC=y/' .config
	grep -q '^CONFIG_STATIC=y$' .config
	make -s -j2 busybox >&2
)
# The applets the suite's specs run.
for a in nmeter nc pgrep sh; do
	"$tree/busybox" --list | grep -qx "$a" || { echo "build-busybox: no $a applet" >&2; exit 1; }
done
# ...and ash passes on what the specs' environment holds.
env 'data-1=value-1' "$tree/busybox" sh -c env | grep -qx 'data-1=value-1' ||
	{ echo "build-busybox: ash drops environment variables that are not shell names" >&2; exit 1; }
mkdir -p "$out.tmp"
install -m 0755 "$tree/busybox" "$out.tmp/busybox"
cp "$tree/.config" "$out.tmp/config"
rm -rf "$out" && mv "$out.tmp" "$out"
echo "$out/busybox"
