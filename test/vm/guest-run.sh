#!/bin/bash
# The guest's side of one run, written to the control share by test/vm
# for each boot (berth-vm-run in the image starts it). The host's
# directory, if any, is mounted at /mnt/host; the command's output goes
# to the virtio serial port berth.out, which the host reads as a file:
# 9p writes are slow, so only the exit code travels back through 9p.
set -u
if [ -e /mnt/ctl/share ]; then
	mkdir -p /mnt/host
	mount -t 9p -o trans=virtio,version=9p2000.L,msize=1048576,cache=loose host0 /mnt/host ||
		echo "berth-vm: cannot mount the share" >/dev/console
fi

out=/dev/virtio-ports/berth.out
for _ in $(seq 100); do [ -e "$out" ] && break; sleep 0.1; done
[ -e "$out" ] || out=/dev/console

# The first line is the host's marker: the guest's uptime at the start.
echo "berth-vm: up $(cut -d' ' -f1 /proc/uptime)s" >"$out"
bash /mnt/ctl/cmd.sh </dev/null >>"$out" 2>&1
rc=$?
echo "berth-vm: command exited $rc at $(cut -d' ' -f1 /proc/uptime)s" >/dev/console
echo "$rc" >/mnt/ctl/rc.tmp && mv /mnt/ctl/rc.tmp /mnt/ctl/rc
