#!/usr/bin/env bash
# Builds a static busybox 1.35 the way the official busybox image is
# built (upstream defconfig plus CONFIG_STATIC=y) from Debian's source
# package, into $CACHE/busybox-$VERSION/busybox, and prints its path.
#
# Debian's busybox-static is not used: it is built with
# FEATURE_SH_STANDALONE (so `sh -c ls` never execs /bin/ls, and
# critest's MaskedPaths spec cannot see the mask) and lacks pgrep and
# ipcs, which critest's ExecSync-timeout and HostIpc specs run.
set -euo pipefail
CACHE=${1:?usage: build-busybox.sh CACHE}
src_list=/etc/apt/sources.list.d/berth-critest-src.sources
mkdir -p "$CACHE"

# Debian's archive as a deb-src source, so `apt-get source` finds busybox.
if ! apt-cache showsrc busybox 2>/dev/null | grep -q '^Version: 1:1\.35'; then
	cat >"$src_list" <<SRC
# Written by Berth's critest harness (test/critest/build-busybox.sh):
# busybox's source package, for a static busybox like the official image's.
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
	apt-get update -qq -o Dir::Etc::sourcelist="$src_list" -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0 >&2
fi
version=$(apt-cache showsrc busybox | sed -n 's/^Version: //p' | sort -V | tail -1)
case "$version" in 1:1.35*) ;; *) echo "build-busybox: want busybox 1.35 source, apt has $version" >&2; exit 1 ;; esac
# The key names the recipe too: change it when the build below changes.
out=$CACHE/busybox-${version#1:}-defconfig-static
if [ -x "$out/busybox" ]; then
	echo "$out/busybox"
	exit 0
fi
work=$(mktemp -d "$CACHE/busybox-src.XXXXXX")
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get source -qq "busybox=$version" >&2)
tree=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'busybox-*' | head -1)
[ -n "$tree" ] || { echo "build-busybox: apt-get source gave no tree" >&2; exit 1; }
(
	cd "$tree"
	make -s defconfig >/dev/null
	sed -i 's/^# CONFIG_STATIC is not set$/CONFIG_STATIC=y/' .config
	grep -q '^CONFIG_STATIC=y$' .config
	make -s -j"$(nproc)" busybox >&2
)
"$tree/busybox" --list | grep -qx pgrep
mkdir -p "$out.tmp"
install -m 0755 "$tree/busybox" "$out.tmp/busybox"
cp "$tree/.config" "$out.tmp/config"
rm -rf "$out" && mv "$out.tmp" "$out"
echo "$out/busybox"
