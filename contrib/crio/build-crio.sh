#!/usr/bin/env bash
# Builds CRI-O's crio (the third column of `make bench`) and its pinns
# from a CRI-O source tree into $CACHE/crio-$VERSION/; prints crio's path.
#
# SRC is either a checkout of https://github.com/cri-o/cri-o (any clone)
# or a bare git directory of one (its HEAD is exported). The build uses
# CRI-O's vendored modules (GOFLAGS=-mod=vendor, nothing downloaded) and
# the tags CRI-O's Makefile would pick on a Debian 12 host without btrfs,
# devicemapper or gpgme headers. libsqlite3 links Debian's libsqlite3
# (libsqlite3-dev) instead of the vendored amalgamation of go-sqlite3,
# which some snapshots of the tree lack (it is a 9 MB C file). seccomp
# needs libseccomp-dev; pinns gcc, make and a static libc (libc6-dev).
# The binary is rebuilt when this script or the
# source's commit changes (both are kept beside it).
set -euo pipefail
SRC=${1:?usage: build-crio.sh SRC CACHE}
CACHE=${2:?usage: build-crio.sh SRC CACHE}
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
SRC=$(cd "$SRC" && pwd)

# A checkout has go.mod at its top; a bare git directory (or a .git
# directory) has HEAD and objects and is exported first.
if [ -f "$SRC/go.mod" ]; then
	commit=$(git -C "$SRC" rev-parse HEAD 2>/dev/null || echo unknown)
	version_go() { cat "$SRC/internal/version/version.go"; }
else
	commit=$(git --git-dir="$SRC" rev-parse HEAD)
	version_go() { git --git-dir="$SRC" show HEAD:internal/version/version.go; }
fi
version=$(version_go | sed -n 's/^const Version = "\(.*\)"$/\1/p')
[ -n "$version" ] || { echo "build-crio: $SRC has no internal/version/version.go with a Version" >&2; exit 1; }
recipe="$(sha256sum "$0" | cut -c1-16) $commit"
out=$CACHE/crio-$version
if [ -x "$out/crio" ] && [ "$(cat "$out/recipe" 2>/dev/null)" = "$recipe" ]; then
	echo "$out/crio"
	exit 0
fi

work=$(mktemp -d "$CACHE/crio-src.XXXXXX")
trap 'rm -rf "$work"' EXIT
if [ -f "$SRC/go.mod" ]; then
	tree=$SRC
else
	# A partial clone or a trimmed snapshot may lack some blobs (git
	# archive then fails): the tree is checked out through a private
	# index without them, naming them; the build says if one was needed.
	index=$work.index
	trap 'rm -rf "$work" "$index"' EXIT
	GIT_INDEX_FILE=$index git --git-dir="$SRC" read-tree HEAD
	git --git-dir="$SRC" ls-tree -r HEAD | awk '$2 == "blob" { print $3 }' |
		git --git-dir="$SRC" cat-file --batch-check='%(objectname) %(objecttype)' |
		awk '$2 == "missing" { print $1 }' | sort -u >"$work.missing"
	git --git-dir="$SRC" ls-tree -r HEAD | awk -F '\t' 'NR == FNR { m[$1]; next }
		{ split($1, f, " "); if (f[3] in m) print $2 }' "$work.missing" - >"$work.paths"
	if [ -s "$work.paths" ]; then
		echo "build-crio: not in $SRC, left out: $(tr '\n' ' ' <"$work.paths")" >&2
		GIT_INDEX_FILE=$index git --git-dir="$SRC" update-index --force-remove --stdin <"$work.paths"
	fi
	rm -f "$work.missing" "$work.paths"
	GIT_INDEX_FILE=$index git --git-dir="$SRC" --work-tree="$work" checkout-index -a --prefix="$work/"
	tree=$work
fi
tags="containers_image_ostree_stub containers_image_openpgp exclude_graphdriver_btrfs"
tags="$tags exclude_graphdriver_devicemapper seccomp libsqlite3"
ldflags="-s -w -X github.com/cri-o/cri-o/internal/version.buildCommit=$commit"
rm -rf "$out.tmp" && mkdir -p "$out.tmp"
(cd "$tree" && GOFLAGS="-mod=vendor -buildvcs=false" go build -p 2 -trimpath \
	-tags "$tags" -ldflags "$ldflags" -o "$out.tmp/crio" ./cmd/crio) >&2
# pinns (C, in the same tree) pins a pod's namespaces; crio runs it for
# every pod.
make -s -C "$tree/pinns" >&2
install -m 0755 "$tree/bin/pinns" "$out.tmp/pinns"
"$out.tmp/crio" --version | grep -q "^crio version $version\$" ||
	{ echo "build-crio: the built binary is not crio $version" >&2; "$out.tmp/crio" --version >&2; exit 1; }
echo "$recipe" >"$out.tmp/recipe"
rm -rf "$out" && mv "$out.tmp" "$out"
echo "$out/crio"
