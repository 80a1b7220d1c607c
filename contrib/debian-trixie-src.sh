# Sourced by the scripts that build from a Debian 13 (trixie) source
# package (contrib/criu/build-criu.sh, test/node-e2e/build-busybox.sh).
# Their source is fetched with apt through a private sources list and a
# private package-list directory under $CACHE, so the host's apt
# configuration is neither read for it nor changed, apt checks what it
# fetches against trixie's signed Sources index, and nothing of trixie is
# installed.
#
# trixie_src CACHE PACKAGE VERSION_PREFIX sets apt_opts (the options that
# make apt-get and apt-cache use the private list) and refreshes that list
# when it lacks VERSION_PREFIX of PACKAGE's source.
trixie_src() {
	local cache=$1 pkg=$2 want=$3 dir
	mkdir -p "$cache"
	# apt reads a relative list path below /etc/apt: make it absolute.
	dir=$(cd "$cache" && pwd)/apt-trixie-src
	mkdir -p "$dir/lists/partial"
	cat >"$dir/sources.list" <<SRC
# Written by Berth's builds from trixie sources (contrib/debian-trixie-src.sh).
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
SRC
	apt_opts=(-o Dir::Etc::sourcelist="$dir/sources.list" -o Dir::Etc::sourceparts=-
		-o Dir::State::Lists="$dir/lists" -o APT::Get::List-Cleanup=0)
	if ! apt-cache "${apt_opts[@]}" showsrc "$pkg" 2>/dev/null | grep -q "^Version: $want"; then
		apt-get update -qq "${apt_opts[@]}" >&2
	fi
}
