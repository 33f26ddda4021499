# shellcheck shell=bash
# What every end-to-end suite script shares: a work directory, PASS/FAIL
# bookkeeping with a summary, a watchdog that bounds the run, and one EXIT
# trap that cleans up, also on failure, Ctrl-C or SIGTERM.
# Used by scripts/lib/testbed.sh (e2e-netns.sh, e2e-faults.sh) and by
# scripts/experiment-testbed.sh.
#
# Source it after setting (all optional):
#   SUITE          name of the suite: work directory /tmp/tarzan-SUITE.*,
#                  final line "SUITE: PASS|FAIL" (upper case)
#   KEEP           1 keeps the work directory
# A script may define, before the run ends:
#   suite_cleanup  called first by the EXIT trap: stop what it started
#   summary_extra  called after the PASS/FAIL list: extra summary lines
# Start the watchdog with `watchdog $$ SECONDS &; WATCHDOG=$!`.

SUITE=${SUITE:-suite}
KEEP=${KEEP:-0}
WORK=$(mktemp -d "/tmp/tarzan-$SUITE.XXXXXX")
START=$(date +%s)
PASSES=0
FAILS=0
RESULTS=()
WATCHDOG=""

log()  { printf '[%4ds] %s\n' "$(($(date +%s) - START))" "$*"; }
pass() { PASSES=$((PASSES + 1)); RESULTS+=("PASS  $1"); printf 'PASS  %s\n' "$1"; }
fail() { FAILS=$((FAILS + 1)); RESULTS+=("FAIL  $1"); printf 'FAIL  %s\n' "$1"; }
die()  { fail "$1"; exit 1; }

suite_exit() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	if declare -F suite_cleanup >/dev/null; then suite_cleanup; fi
	[ -n "$WATCHDOG" ] && kill "$WATCHDOG" 2>/dev/null
	wait 2>/dev/null
	if [ "$KEEP" = 1 ]; then
		log "work directory kept: $WORK"
	else
		rm -rf "$WORK"
	fi
	if [ "$rc" = 0 ] && [ "$FAILS" -gt 0 ]; then rc=1; fi
	summary "$rc"
	exit "$rc"
}

summary() {
	local rc=$1 label
	label=$(echo "$SUITE" | tr a-z A-Z)
	echo
	echo "== summary: $PASSES passed, $FAILS failed ($(($(date +%s) - START)) s)"
	local r
	for r in "${RESULTS[@]}"; do echo "  $r"; done
	if declare -F summary_extra >/dev/null; then summary_extra; fi
	if [ "$rc" = 0 ] && [ "$FAILS" = 0 ] && [ "$PASSES" -gt 0 ]; then echo "$label: PASS"; else echo "$label: FAIL"; fi
}

trap suite_exit EXIT
trap 'echo; log "interrupted"; fail "run interrupted (SIGINT)"; exit 130' INT
trap 'log "terminated"; fail "run terminated (SIGTERM, or the watchdog)"; exit 143' TERM

# watchdog PID SECONDS: interrupt PID (the suite) if it overruns.
watchdog() {
	local me=$1 secs=$2 t=0
	while [ "$t" -lt "$secs" ]; do
		kill -0 "$me" 2>/dev/null || exit 0
		sleep 1
		t=$((t + 1))
	done
	echo "watchdog: run exceeded ${secs}s after the build, aborting" >&2
	kill -TERM "$me" 2>/dev/null
}
