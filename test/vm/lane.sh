#!/bin/bash
# The VM lane's inside (test/vm lane): runs in the VM from the share that
# test/vm filled on the host (/mnt/host: bin/, critest/, e2e.test), after
# copying it to the VM's own disk (binaries run from 9p are slow, and
# user-namespaced pods need files their mapped root can read). Every run
# ends with one line the host sums:
#   lane-result <suite> <driver>/<runtime> rc=<exit code>: N passed, N failed, N skipped
# Configuration (environment, set by test/vm):
#   LANE_CRITEST         driver/runtime pairs for critest, space-separated
#   LANE_CRITEST_ARGS    more flags for the critest harness
#   LANE_E2E             cgroup drivers for the e2e part, space-separated
#   LANE_E2E_HANDLERS    runtime handlers the e2e container tests run with
#   LANE_E2E_RUN         -test.run pattern for the e2e part
#   LANE_E2E_TIMEOUT     -test.timeout for each e2e run
set -u
w=/var/lib/berth-lane
mkdir -p "$w"
t0=$(date +%s%N)
cp -a /mnt/host/. "$w/" || exit 1
cd "$w" || exit 1
echo "lane: copied the share ($(du -sm "$w" | cut -f1) MB) to the VM's disk in $((($(date +%s%N) - t0) / 1000000)) ms"
echo "lane: kernel $(uname -r); init $(readlink /proc/1/exe); $(systemctl --version | head -1)"
echo "lane: /sys/fs/cgroup is $(stat -f -c %T /sys/fs/cgroup), controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
echo "lane: $(runc --version | head -1); $(crun --version | head -1)"
echo "lane: $(nproc) CPUs, $(free -m | awk '/^Mem:/ {print $2}') MiB"

# tally prints the result line of a go test -v log: top-level tests only.
tally() {
	local log=$1 name=$2 rc=$3
	local p f s
	p=$(grep -c '^--- PASS: ' "$log")
	f=$(grep -c '^--- FAIL: ' "$log")
	s=$(grep -c '^--- SKIP: ' "$log")
	grep -E '^\s*--- FAIL: ' "$log" | sed 's/^/lane: failed: /'
	echo "lane-result $name rc=$rc: $p passed, $f failed, $s skipped"
}

for pair in ${LANE_CRITEST:-}; do
	driver=${pair%/*} rt=${pair#*/}
	log=$w/critest-$driver-$rt.log
	echo "lane: === critest, $driver driver, $rt runtime"
	start=$(date +%s)
	sel=(-runtime "$rt" -cgroup-driver "$driver")
	# A runtime's own expected list (test/vm/expected-<runtime>.txt) adds
	# to the harness's.
	if [ -f "$w/critest/expected-$rt.txt" ]; then
		cat "$w/critest/src/expected-failures.txt" "$w/critest/expected-$rt.txt" >"$w/expected-$driver-$rt.txt"
		sel+=(-expected "$w/expected-$driver-$rt.txt")
	fi
	# shellcheck disable=SC2086
	"$w/critest/critest-harness" -bindir "$w/bin" -src "$w/critest/src" -tools "$w/critest/tools" \
		-build "$w/critest-$driver-$rt" "${sel[@]}" ${LANE_CRITEST_ARGS:-} 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	counts=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$log" | tail -1)
	echo "lane: critest $driver/$rt took $(($(date +%s) - start))s"
	echo "lane-result critest $driver/$rt rc=$rc: ${counts:-0 passed, 1 failed, 0 skipped}"
done

for driver in ${LANE_E2E:-}; do
	log=$w/e2e-$driver.log
	echo "lane: === e2e, $driver driver, handlers ${LANE_E2E_HANDLERS:-default}"
	start=$(date +%s)
	(cd "$w" && BERTH_TEST_BINDIR=$w/bin BERTH_TEST_CGROUP_DRIVER=$driver BERTH_TEST_HANDLERS=${LANE_E2E_HANDLERS:-} \
		"$w/e2e.test" -test.v -test.count=1 -test.run "${LANE_E2E_RUN:-.}" -test.timeout "${LANE_E2E_TIMEOUT:-60m}" 2>&1) |
		tee "$log"
	rc=${PIPESTATUS[0]}
	echo "lane: e2e $driver took $(($(date +%s) - start))s"
	tally "$log" "e2e $driver/${LANE_E2E_HANDLERS:-default}" "$rc"
done
