#!/usr/bin/env bash
# The traffic-analysis experiment on the network-namespace test bed: runs
# `tarzan experiment --testbed -c experiments/testbed.toml` (12 real node
# processes in namespaces, tcpdump on every veth, policies none and
# balanced) and checks that both runs complete, results.json is written,
# and the flow-correlation attack names the true initiator more often
# without cover (none) than with it (balanced).
# See scripts/README.md and docs/EXPERIMENTS.md ("Test bed").
#
# Usage (as root, from anywhere in the repository):
#   bash scripts/experiment-testbed.sh          # build, run, check, clean up (about 1.5 minutes)
#   KEEP=1 bash scripts/experiment-testbed.sh   # keep the work directory: results, node logs, pcaps
#   SWEEP=path/to.toml bash scripts/experiment-testbed.sh   # another sweep file (needs none and balanced)
#
# Traffic goes only to addresses inside the namespaces tarzan creates, or
# to loopback. tarzan removes its namespaces and processes itself on exit,
# failure, Ctrl-C or SIGTERM; this script also removes any namespace left
# with tarzan's prefix (tztb<PID>) if tarzan itself had to be killed.
# Exit status: 0 when every check passed, 1 otherwise.
set -uo pipefail

SUITE=experiment-testbed
DEADLINE_SECS=${DEADLINE_SECS:-230} # hard bound on the run after the build
REPO=$(cd "$(dirname "$0")/.." && pwd)
SWEEP=${SWEEP:-$REPO/experiments/testbed.toml}
TZ_PID=""
# shellcheck source=lib/suite.sh
source "$(dirname "$0")/lib/suite.sh" # WORK, START, log/pass/fail/die, summary, watchdog, the EXIT trap

# suite_cleanup (called by suite.sh's EXIT trap): stop tarzan, which
# removes its own namespaces and processes; then anything a killed tarzan
# left behind.
suite_cleanup() {
	if [ -n "$TZ_PID" ] && kill -0 "$TZ_PID" 2>/dev/null; then
		log "stopping tarzan ($TZ_PID): it removes its namespaces and processes"
		kill -INT "$TZ_PID" 2>/dev/null
		for _ in $(seq 300); do kill -0 "$TZ_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$TZ_PID" 2>/dev/null
	fi
	# Whatever a killed tarzan left: its namespaces (named tztb<PID>...)
	# and the processes inside them, all started by it.
	if [ -n "$TZ_PID" ]; then
		local ns p
		for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^tztb${TZ_PID}r"); do
			for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
			ip netns del "$ns" 2>/dev/null && log "removed leftover namespace $ns"
		done
	fi
}

echo "== tarzan experiment --testbed (sweep $SWEEP, work dir $WORK)"
[ "$(id -u)" = 0 ] || die "preflight: must run as root (network namespaces, packet capture)"
for t in ip:iproute2 tcpdump:tcpdump go:golang timeout:coreutils; do
	command -v "${t%%:*}" >/dev/null 2>&1 || die "preflight: ${t%%:*} not found (apt-get install ${t#*:})"
done
[ -f "$SWEEP" ] || die "preflight: no sweep file $SWEEP"

log "building tarzan"
(cd "$REPO" && go build -o "$WORK/tarzan" ./cmd/tarzan) || die "build: go build failed"
START=$(date +%s)
watchdog $$ "$DEADLINE_SECS" &
WATCHDOG=$!

log "running the sweep on the test bed"
"$WORK/tarzan" experiment --testbed -c "$SWEEP" -o "$WORK/out" --testbed-work "$WORK/runs" \
	>"$WORK/stdout" 2> >(tee "$WORK/stderr" >&2) &
TZ_PID=$!
wait "$TZ_PID"
rc=$?
log "tarzan exited with status $rc"

RES="$WORK/out/results.json"
if [ "$rc" = 0 ] && [ -s "$RES" ]; then
	pass "1 sweep: tarzan experiment --testbed exited 0 and wrote results.json"
else
	die "1 sweep: exit status $rc, results.json $( [ -s "$RES" ] && echo present || echo missing)"
fi

# policy TOP1 pairs from the indented JSON (encoding/json, two spaces):
# the first "Top1" after a run's "flow_correlation" is the correlation's.
top1s=$(awk '
	/^      "policy": / { gsub(/[",]/, "", $2); p = $2 }
	/"flow_correlation": \{/ { inc = 1 }
	inc && /"Top1": / { gsub(/,/, "", $2); print p, $2; inc = 0 }
' "$RES")
mode=$(sed -n 's/^  "mode": "\(.*\)",$/\1/p' "$RES")
runs=$(echo "$top1s" | grep -c . || true)
if [ "$mode" = testbed ] && [ "$runs" = 2 ]; then
	pass "2 runs: mode testbed, 2 runs ($(echo "$top1s" | awk '{print $1}' | tr '\n' ' '))"
else
	fail "2 runs: mode '$mode', $runs runs (want testbed and 2)"
fi
none=$(echo "$top1s" | awk '$1 == "none" {print $2}')
bal=$(echo "$top1s" | awk '$1 == "balanced" {print $2}')
if [ -n "$none" ] && [ -n "$bal" ] && awk -v a="$none" -v b="$bal" 'BEGIN { exit !(a + 0 > b + 0) }'; then
	pass "3 cover helps: flow-correlation top-1 none $none > balanced $bal"
else
	fail "3 cover helps: flow-correlation top-1 none '${none:-?}', balanced '${bal:-?}' (want none > balanced)"
fi

echo
echo "---- report.md"
sed -n '/^## /,/^## Plots/p' "$WORK/out/report.md" | grep -v '^## Plots'
echo "---- notes"
sed -n '/^  "notes": \[/,/^  \]/p' "$RES" | sed '1d;$d' | sed 's/^ *"\(.*\)",\{0,1\}$/  - \1/'
[ "$FAILS" = 0 ]
