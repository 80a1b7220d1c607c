#!/bin/bash
# The VM lane's image, from Debian packages only: a minimal bookworm with
# systemd as init, a kernel and its initrd, and the berth-vm unit that runs
# the host's command. Writes vmlinuz, initrd.img and disk.img (raw ext4,
# made by mkfs.ext4 -d: no loop device) into OUT. Needs root, mmdebstrap
# and e2fsprogs. test/vm hashes this file and guest/ to key its cache, so
# any change here rebuilds the image.
set -euo pipefail
out=${1:?usage: image.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
suite=bookworm
mirror=http://deb.debian.org/debian
size=6G

packages=(
	# init, devices, the system bus (the systemd cgroup driver talks D-Bus)
	systemd-sysv udev dbus kmod mount linux-image-amd64
	# what Berth and its tests run
	runc crun containernetworking-plugins iproute2 iptables
	busybox-static procps ca-certificates
)

root=$(mktemp -d "${out%/}.root.XXXXXX")
# mmdebstrap mounts /proc, /sys and /dev inside while it works: never
# remove the tree through a mount that is still there.
cleanup() {
	local m
	for m in $(awk -v r="$root/" 'index($2, r) == 1 {print $2}' /proc/self/mounts | sort -r); do
		umount -l "$m" || true
	done
	rm -rf --one-file-system "$root"
}
trap cleanup EXIT
mkdir -p "$out"

mmdebstrap --variant=minbase --mode=root --format=directory \
	--include="$(IFS=,; echo "${packages[*]}")" \
	--dpkgopt='path-exclude=/usr/share/doc/*' \
	--dpkgopt='path-exclude=/usr/share/man/*' \
	--dpkgopt='path-exclude=/usr/share/locale/*' \
	"$suite" "$root" \
	"deb $mirror $suite main" \
	"deb $mirror $suite-updates main" \
	"deb http://deb.debian.org/debian-security $suite-security main"

echo berth-vm >"$root/etc/hostname"
printf '127.0.0.1 localhost\n::1 localhost\n127.0.1.1 berth-vm\n' >"$root/etc/hosts"
: >"$root/etc/fstab"
install -m 0755 "$here/guest/berth-vm-run" "$root/usr/local/sbin/berth-vm-run"
install -m 0644 "$here/guest/berth-vm.service" "$root/etc/systemd/system/berth-vm.service"
chroot "$root" systemctl enable berth-vm.service
# Nobody logs in: no gettys on the console.
chroot "$root" systemctl mask serial-getty@ttyS0.service getty@tty1.service
rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/*

cp "$root"/boot/vmlinuz-* "$out/vmlinuz"
cp "$root"/boot/initrd.img-* "$out/initrd.img"
chmod 0644 "$out/vmlinuz" "$out/initrd.img"
rm -f "$out/disk.img"
truncate -s "$size" "$out/disk.img"
mkfs.ext4 -q -F -L berth-vm -d "$root" "$out/disk.img"
