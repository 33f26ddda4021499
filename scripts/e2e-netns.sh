#!/usr/bin/env bash
# End-to-end test of Tarzan's IP service on a real (virtual) network: tarzan
# node processes in Linux network namespaces joined by veth pairs to one
# bridge, a kernel TUN client and a SOCKS5 client, exits running pnat, and
# unmodified curl and iperf3 against a server in its own namespace.
# See scripts/README.md for the topology and what each check means. The
# test bed itself (namespaces, configs, processes, cleanup) is
# scripts/lib/testbed.sh, shared with scripts/e2e-faults.sh.
#
# Usage (as root, from anywhere in the repository):
#   bash scripts/e2e-netns.sh            # build, run every check, clean up
#   KEEP=1 bash scripts/e2e-netns.sh     # keep the work directory (logs, configs)
#   NODES=8 bash scripts/e2e-netns.sh    # relay/exit nodes (>= 4)
#
# Traffic goes only to addresses inside the namespaces this script creates,
# or to loopback. Everything it creates (namespaces, veths, the bridge,
# /etc/netns entries, processes) is removed on exit, failure or Ctrl-C.
# Exit status: 0 when every check passed, 1 otherwise.
set -uo pipefail

SUITE=e2e-netns
NODES=${NODES:-8}
KEEP=${KEEP:-0}
DEADLINE_SECS=${DEADLINE_SECS:-170} # hard bound on the whole run after the build
FILE_SIZE=$((10 * 1024 * 1024))
# shellcheck source=lib/testbed.sh
source "$(dirname "$0")/lib/testbed.sh"

tb_preflight iperf3
tb_build
tb_topology
tb_configs
tb_start

# ---------------------------------------------------------------- helpers

# iperf_field FILE SECTION FIELD: a number in the end.SECTION object of an
# iperf3 -J report (SECTION: sum_sent, sum_received, sum; FIELD: bits_per_second, ...).
iperf_field() {
	local file=$1 section=$2 field=$3
	# cJSON indents with tabs and separates a key from its value with ":\t".
	sed -n '/^\t"end":[[:space:]]*{/,$p' "$file" | sed -n "/^\t\t\"$section\":[[:space:]]*{/,/^\t\t}/p" |
		sed -n "s/^\t\t\t\"$field\":[[:space:]]*\([-0-9.e+]*\),\{0,1\}$/\1/p" | head -n1
}

mbit() { # bits/s (decimal or e-notation) -> Mbit/s with one decimal
	local b
	b=$(LC_ALL=C printf '%.0f' "${1:-0}" 2>/dev/null) || b=0
	echo "$((b / 1000000)).$(((b / 100000) % 10))"
}

# ratio A B: A/B as a percentage with one decimal, integer arithmetic only.
ratio() {
	local a b
	a=$(LC_ALL=C printf '%.0f' "${1:-0}" 2>/dev/null || echo 0)
	b=$(LC_ALL=C printf '%.0f' "${2:-0}" 2>/dev/null || echo 0)
	if [ "$b" -le 0 ] 2>/dev/null; then echo "n/a"; return; fi
	local t=$((a * 1000 / b))
	echo "$((t / 10)).$((t % 10))%"
}

# ---------------------------------------------------------------- check 1

log "check 1: membership and mimic links"
t1=$(date +%s)
if wait_converged 60 "${ALL_NODES[@]}"; then
	pass "1 membership: ${#ALL_NODES[@]} nodes know every peer, all mimic links up ($(($(date +%s) - t1)) s)"
else
	for n in "${ALL_NODES[@]}"; do tail_log "$n" 5; done
	die "1 membership: not converged within 60 s"
fi

wait_tun 10 || { tail_log tun; die "2 tun: device $TUN_DEV with routes 0.0.0.0/1, 128.0.0.0/1 did not appear"; }
log "client routing table (${NS_OF[tun]}):"
ip -n "${NS_OF[tun]}" route show | sed 's/^/    /'

# ---------------------------------------------------------------- check 2

is_exit_addr() { # ADDR: one of the exits (relay nodes) of this test bed
	local n
	for n in "${NODE_NAMES[@]}"; do [ "$1" = "${ADDR_OF[$n]}" ] && return 0; done
	return 1
}

# server_saw FROM_LINE: the remote addresses of requests logged after line FROM_LINE.
server_saw() { tail -n +"$(($1 + 1))" "$WORK/srv-requests.log" | cut -d' ' -f1 | sort -u | tr '\n' ' '; }

check_saw() { # label from_line
	local saw a ok=1
	saw=$(server_saw "$2")
	[ -n "$saw" ] || { echo "    the server logged no request"; return 1; }
	for a in $saw; do
		if ! is_exit_addr "$a"; then ok=0; echo "    the server saw $a, which is not an exit"; fi
	done
	echo "    the server saw: $saw"
	[ "$ok" = 1 ]
}

log "check 2: curl through the TUN: http://$SERVER_IP:$HTTP_PORT/file from ${NS_OF[tun]}"
ip -n "${NS_OF[tun]}" route get "$SERVER_IP" | head -n1 | sed 's/^/    route: /'
before=$(wc -l <"$WORK/srv-requests.log")
rm -f "$WORK/tun.dl"
curl_out=$(ip netns exec "${NS_OF[tun]}" curl -sS --connect-timeout 15 --max-time 60 -o "$WORK/tun.dl" \
	-w '%{http_code} %{size_download} %{time_total} %{time_starttransfer} %{speed_download}' \
	"http://$SERVER_IP:$HTTP_PORT/file" 2>"$WORK/tun.curl.err")
curl_rc=$?
read -r code bytes ttotal tfirst speed <<<"${curl_out:-0 0 0 0 0}"
got=$(sha256sum "$WORK/tun.dl" 2>/dev/null | cut -c1-64)
speed=${speed:-0}; tun_mbit=$((${speed%.*} * 8 / 1000000))
TUN_CURL="$bytes bytes in ${ttotal} s (first byte ${tfirst} s, ${tun_mbit} Mbit/s)"
echo "    curl: exit $curl_rc, HTTP $code, $TUN_CURL"
if [ "$curl_rc" = 0 ] && [ "$code" = 200 ] && [ "$got" = "$WANT_SUM" ]; then
	pass "2a tun curl: 10 MiB file, sha256 match ($TUN_CURL)"
else
	sed 's/^/    /' "$WORK/tun.curl.err"
	fail "2a tun curl: rc=$curl_rc http=$code bytes=$bytes sha256 ${got:-none} want $WANT_SUM"
	tail_log tun
fi
if check_saw tun "$before"; then
	pass "2b tun anonymity: the server saw only exit addresses, never $TUN_IP"
else
	fail "2b tun anonymity: the server saw a non-exit address (or nothing)"
fi

# ---------------------------------------------------------------- check 3

log "check 3: curl --socks5-hostname through the SOCKS adapter in ${NS_OF[socks]}"
if ip netns exec "${NS_OF[socks]}" timeout 5 getent hosts "$SERVER_NAME" >/dev/null 2>&1; then
	fail "3a socks dns: $SERVER_NAME resolves in the client namespace (it must resolve only at the exit)"
else
	pass "3a socks dns: $SERVER_NAME does not resolve in the client namespace"
fi
if ! ip netns exec "${NS_OF[n1]}" timeout 5 getent hosts "$SERVER_NAME" >/dev/null 2>&1; then
	fail "3a socks dns: $SERVER_NAME does not resolve in exit namespace ${NS_OF[n1]} either (test bed broken)"
fi
before=$(wc -l <"$WORK/srv-requests.log")
rm -f "$WORK/socks.dl"
curl_out=$(ip netns exec "${NS_OF[socks]}" curl -sS --connect-timeout 15 --max-time 60 \
	--socks5-hostname 127.0.0.1:1080 -o "$WORK/socks.dl" \
	-w '%{http_code} %{size_download} %{time_total} %{time_starttransfer} %{speed_download}' \
	"http://$SERVER_NAME:$HTTP_PORT/file" 2>"$WORK/socks.curl.err")
curl_rc=$?
read -r code bytes ttotal tfirst speed <<<"${curl_out:-0 0 0 0 0}"
got=$(sha256sum "$WORK/socks.dl" 2>/dev/null | cut -c1-64)
speed=${speed:-0}; socks_mbit=$((${speed%.*} * 8 / 1000000))
SOCKS_CURL="$bytes bytes in ${ttotal} s (first byte ${tfirst} s, ${socks_mbit} Mbit/s)"
echo "    curl: exit $curl_rc, HTTP $code, $SOCKS_CURL"
if [ "$curl_rc" = 0 ] && [ "$code" = 200 ] && [ "$got" = "$WANT_SUM" ]; then
	pass "3b socks curl: http://$SERVER_NAME/file resolved at the exit, sha256 match ($SOCKS_CURL)"
else
	sed 's/^/    /' "$WORK/socks.curl.err"
	fail "3b socks curl: rc=$curl_rc http=$code bytes=$bytes sha256 ${got:-none}"
	tail_log socks
fi
if check_saw socks "$before"; then
	pass "3c socks anonymity: the server saw only exit addresses, never $SOCKS_IP"
else
	fail "3c socks anonymity: the server saw a non-exit address (or nothing)"
fi

# ---------------------------------------------------------------- check 4

# run_iperf LABEL NS ARGS...: one iperf3 client run against the server, JSON
# report in $WORK/iperf-LABEL.json. Bounded by timeout.
run_iperf() {
	local label=$1 ns=$2; shift 2
	timeout 40 ip netns exec "$ns" iperf3 -c "$SERVER_IP" -p "$IPERF_PORT" --connect-timeout 10000 -J "$@" \
		>"$WORK/iperf-$label.json" 2>"$WORK/iperf-$label.err"
}

iperf_ok() { # FILE: a complete report without an "error" member
	[ -s "$1" ] && ! grep -q $'^\t"error":' "$1" && grep -q $'^\t"end":' "$1"
}

log "check 4: iperf3 TCP 10 s and UDP 50 Mbit/s 5 s, through the TUN and directly"
declare -A BPS LOSS
for run in "tcp-direct ${NS_OF[n1]} -t 10" "tcp-tunnel ${NS_OF[tun]} -t 10" \
	"udp-direct ${NS_OF[n1]} -u -b 50M -l 1200 -t 5" "udp-tunnel ${NS_OF[tun]} -u -b 50M -l 1200 -t 5"; do
	read -r label ns args <<<"$run"
	# shellcheck disable=SC2086
	run_iperf "$label" "$ns" $args
	rc=$?
	f="$WORK/iperf-$label.json"
	if [ "$rc" = 0 ] && iperf_ok "$f"; then
		case $label in
		tcp-*)
			BPS[$label]=$(iperf_field "$f" sum_received bits_per_second)
			retr=$(iperf_field "$f" sum_sent retransmits)
			echo "    $label: $(mbit "${BPS[$label]}") Mbit/s received (retransmits ${retr:-?})"
			;;
		udp-*)
			# The receiver's view: iperf3 >= 3.12 reports end.sum_received;
			# older versions only end.sum (the sender's rate, the receiver's loss).
			sec=sum_received
			[ -n "$(iperf_field "$f" sum_received bits_per_second)" ] || sec=sum
			BPS[$label]=$(iperf_field "$f" "$sec" bits_per_second)
			lost=$(iperf_field "$f" "$sec" lost_percent)
			LOSS[$label]=$(LC_ALL=C printf '%.2f' "${lost:-0}" 2>/dev/null)
			echo "    $label: $(mbit "${BPS[$label]}") Mbit/s received of 50 offered, lost ${LOSS[$label]}%"
			;;
		esac
	else
		echo "    $label: iperf3 failed (rc $rc): $(grep -m1 '"error"' "$f" 2>/dev/null) $(head -c 300 "$WORK/iperf-$label.err")"
	fi
done
for proto in tcp udp; do
	t=${BPS[$proto-tunnel]:-} d=${BPS[$proto-direct]:-}
	P_UP=$(echo "$proto" | tr a-z A-Z)
	if [ -n "$t" ] && [ -n "$d" ]; then
		extra=""
		[ "$proto" = udp ] && extra=", lost: tunnel ${LOSS[udp-tunnel]}% direct ${LOSS[udp-direct]}%"
		pass "4 iperf3 $P_UP: tunnel $(mbit "$t") Mbit/s, direct $(mbit "$d") Mbit/s, tunnel/direct $(ratio "$t" "$d")$extra"
	else
		fail "4 iperf3 $P_UP: tunnel ${t:-failed}, direct ${d:-failed}"
	fi
done

# ---------------------------------------------------------------- check 5

# tun_leftovers: prints anything of the TUN adapter left in the client
# namespace (device, routes with proto 122, routes via the device, state files).
tun_leftovers() {
	local ns=${NS_OF[tun]}
	ip -n "$ns" -o link show type tun 2>/dev/null | cut -d: -f2 | sed 's/^ */tun device: /'
	ip -n "$ns" -4 route show table all proto 122 2>/dev/null | sed 's/^/route (proto 122): /'
	ip -n "$ns" -6 route show table all proto 122 2>/dev/null | sed 's/^/route (proto 122): /'
	ls "$WORK/tun/state" 2>/dev/null | sed 's/^/state file: /'
}

# tun_summary: one line, e.g. "tun device tarzan0, 13 routes (proto 122), 1 state file".
tun_summary() {
	local left
	left=$(tun_leftovers)
	echo "tun devices: $(echo "$left" | grep '^tun device' | sed 's/^tun device: //' | tr '\n' ' ')" \
		"| routes (proto 122): $(echo "$left" | grep -c '^route')" \
		"| state files: $(echo "$left" | grep -c '^state file')"
}

log "check 5: TUN teardown"
echo "    while running: $(tun_summary)"
stop_node tun && stopped="on SIGTERM" || stopped="only on SIGKILL"
left=$(tun_leftovers)
if [ -z "$left" ]; then
	pass "5a tun clean stop: node exited $stopped, no device, route or state file left"
else
	echo "$left" | sed 's/^/    left: /'
	fail "5a tun clean stop: node exited $stopped, leftovers in ${NS_OF[tun]}"
fi

log "  restarting the TUN client, then SIGKILL of its adapter plugin"
start_node tun
if wait_tun 15 && wait_converged 30 tun; then
	node_status tun
	apid=$(grep -A4 '"kind": "adapter"' "$WORK/tun/status.json" | sed -n 's/.*"pid": *\([0-9][0-9]*\).*/\1/p' | head -n1)
	restarts0=$(grep -A5 '"kind": "adapter"' "$WORK/tun/status.json" | sed -n 's/.*"restarts": *\([0-9][0-9]*\).*/\1/p' | head -n1)
	echo "    adapter plugin pid ${apid:-?} (restarts ${restarts0:-?}); before kill: $(tun_summary)"
	if [ -n "$apid" ] && [ "$(cat "/proc/$apid/stat" 2>/dev/null | cut -d' ' -f4)" = "${PID_OF[tun]}" ]; then
		kill -KILL "$apid"
		sleep 0.05
		echo "    right after SIGKILL: $(tun_summary)"
		sleep 3
		echo "    3 s after SIGKILL: $(tun_summary)"
		node_status tun
		apid2=$(grep -A4 '"kind": "adapter"' "$WORK/tun/status.json" | sed -n 's/.*"pid": *\([0-9][0-9]*\).*/\1/p' | head -n1)
		restarts1=$(grep -A5 '"kind": "adapter"' "$WORK/tun/status.json" | sed -n 's/.*"restarts": *\([0-9][0-9]*\).*/\1/p' | head -n1)
		echo "    adapter plugin now pid ${apid2:-?}, restarts ${restarts1:-?}"
		if [ -n "$apid2" ] && [ "$apid2" != "$apid" ] && wait_tun 5; then
			# The supervisor restarted the plugin: does the tunnel work again?
			if ip netns exec "${NS_OF[tun]}" curl -sS --connect-timeout 10 --max-time 30 -o /dev/null \
				"http://$SERVER_IP:$HTTP_PORT/file" 2>/dev/null; then
				pass "5b tun plugin SIGKILL: restarted (pid $apid -> $apid2) and curl works again"
			else
				fail "5b tun plugin SIGKILL: restarted (pid $apid -> $apid2) but curl through the TUN fails"
			fi
		else
			echo "    observed: plugin not restarted with a working TUN (pid ${apid2:-none})"
			fail "5b tun plugin SIGKILL: the adapter did not come back"
		fi
		stop_node tun && stopped="on SIGTERM" || stopped="only on SIGKILL"
		left=$(tun_leftovers)
		if [ -z "$left" ]; then
			pass "5c tun stop after plugin SIGKILL: node exited $stopped, nothing left"
		else
			echo "$left" | sed 's/^/    left: /'
			fail "5c tun stop after plugin SIGKILL: node exited $stopped, leftovers in ${NS_OF[tun]}"
		fi
		log "  starting the TUN client once more: its start must clear what is stale"
		start_node tun
		if wait_tun 15; then
			echo "    running again: $(tun_summary)"
			stop_node tun && stopped="on SIGTERM" || stopped="only on SIGKILL"
			left=$(tun_leftovers)
			if [ -z "$left" ]; then
				pass "5d tun next start and stop: node exited $stopped, nothing left"
			else
				echo "$left" | sed 's/^/    left: /'
				fail "5d tun next start and stop: leftovers in ${NS_OF[tun]}"
			fi
		else
			tail_log tun
			fail "5d tun next start: the TUN did not come up"
			stop_node tun
		fi
	else
		fail "5b tun plugin SIGKILL: no out-of-process adapter plugin found in status (pid ${apid:-none})"
	fi
else
	tail_log tun
	fail "5b tun restart: the TUN client did not come back up"
fi

log "stopping nodes"
for n in "${ALL_NODES[@]}"; do [ -n "${PID_OF[$n]:-}" ] && kill -TERM "${PID_OF[$n]}" 2>/dev/null; done
clean=0
for n in "${ALL_NODES[@]}"; do
	[ -n "${PID_OF[$n]:-}" ] || continue
	stop_node "$n" || { clean=1; echo "    node $n needed SIGKILL"; }
done
[ "$clean" = 0 ] && pass "6 shutdown: every node exited on SIGTERM" || fail "6 shutdown: some nodes needed SIGKILL"
kill "$WATCHDOG" 2>/dev/null
[ "$FAILS" = 0 ]
