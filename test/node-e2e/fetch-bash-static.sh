#!/usr/bin/env bash
# Fetches Debian's bash-static (a static bash, so it runs in any image)
# with apt-get download, into $CACHE/bash-static-$VERSION/bash, and
# prints its path. Nothing is installed on the host: the package is only
# unpacked. agnhost's image has /bin/bash (its Dockerfile installs bash)
# and specs run it.
set -euo pipefail
CACHE=${1:?usage: fetch-bash-static.sh CACHE}
version=$(apt-cache policy bash-static | sed -n 's/^  Candidate: //p')
if [ -z "$version" ] || [ "$version" = "(none)" ]; then
	apt-get update -qq >&2
	version=$(apt-cache policy bash-static | sed -n 's/^  Candidate: //p')
fi
[ -n "$version" ] && [ "$version" != "(none)" ] || { echo "fetch-bash-static: apt has no bash-static" >&2; exit 1; }
out=$CACHE/bash-static-$version
if [ -x "$out/bash" ]; then
	echo "$out/bash"
	exit 0
fi
mkdir -p "$CACHE"
work=$(mktemp -d "$CACHE/bash-static.XXXXXX")
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -qq -o APT::Sandbox::User=root "bash-static=$version" >&2)
dpkg-deb -x "$work"/bash-static_*.deb "$work/root"
bin=$work/root/bin/bash-static
[ -x "$bin" ] || bin=$work/root/usr/bin/bash-static
"$bin" -c 'exit 0'
mkdir -p "$out.tmp"
install -m 0755 "$bin" "$out.tmp/bash"
rm -rf "$out" && mv "$out.tmp" "$out"
echo "$out/bash"
