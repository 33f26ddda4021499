#!/usr/bin/env bash
# End-to-end test of Tarzan's IP service on a real (virtual) network: tarzan
# node processes in Linux network namespaces joined by veth pairs to one
# bridge, a kernel TUN client and a SOCKS5 client, exits running pnat, and
# unmodified curl and iperf3 against a server in its own namespace.
# See scripts/README.md for the topology and what each check means.
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

NODES=${NODES:-8}
KEEP=${KEEP:-0}
DEADLINE_SECS=${DEADLINE_SECS:-170} # hard bound on the whole run after the build
PORT=7700
HTTP_PORT=8080
IPERF_PORT=5201
FILE_SIZE=$((10 * 1024 * 1024))
SERVER_IP=172.31.0.1
SERVER_NAME=server.tarzan.test
TUN_IP=10.100.0.1
SOCKS_IP=10.101.0.1
TUN_DEV=tarzan0

REPO=$(cd "$(dirname "$0")/.." && pwd)
P="tz$$-"                                   # unique prefix for this run's namespaces
WORK=$(mktemp -d /tmp/tarzan-e2e-netns.XXXXXX)
START=$(date +%s)

NSES=()       # namespaces created, in creation order
PIDS=()       # processes started (every long-running one)
PASSES=0
FAILS=0
RESULTS=()

log()  { printf '[%4ds] %s\n' "$(($(date +%s) - START))" "$*"; }
pass() { PASSES=$((PASSES + 1)); RESULTS+=("PASS  $1"); printf 'PASS  %s\n' "$1"; }
fail() { FAILS=$((FAILS + 1)); RESULTS+=("FAIL  $1"); printf 'FAIL  %s\n' "$1"; }
die()  { fail "$1"; exit 1; }

# ---------------------------------------------------------------- cleanup

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	log "cleaning up"
	local p
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for _ in $(seq 50); do
		local alive=0
		for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ "$alive" = 0 ] && break
		sleep 0.1
	done
	for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	# Anything still inside our namespaces (plugin children of a killed
	# node, a stray curl) was started by this script: kill it by PID.
	local ns
	for ns in "${NSES[@]}"; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
	done
	sleep 0.2
	for ns in "${NSES[@]}"; do
		ip netns del "$ns" 2>/dev/null
		rm -rf "/etc/netns/$ns"
	done
	rmdir /etc/netns 2>/dev/null # only if now empty
	wait 2>/dev/null
	if [ "$KEEP" = 1 ]; then
		log "work directory kept: $WORK"
	else
		rm -rf "$WORK"
	fi
	local left
	left=$(ip netns list 2>/dev/null | grep -c "^$P" || true)
	[ "$left" != 0 ] && echo "warning: $left namespaces with prefix $P left behind"
	if [ "$rc" = 0 ] && [ "$FAILS" -gt 0 ]; then rc=1; fi
	summary "$rc"
	exit "$rc"
}

summary() {
	local rc=$1
	echo
	echo "== summary: $PASSES passed, $FAILS failed ($(($(date +%s) - START)) s)"
	local r
	for r in "${RESULTS[@]}"; do echo "  $r"; done
	if [ "$rc" = 0 ] && [ "$FAILS" = 0 ] && [ "$PASSES" -gt 0 ]; then echo "E2E-NETNS: PASS"; else echo "E2E-NETNS: FAIL"; fi
}

trap cleanup EXIT
trap 'echo; log "interrupted"; fail "run interrupted (SIGINT)"; exit 130' INT
trap 'log "terminated"; fail "run terminated (SIGTERM, or the watchdog)"; exit 143' TERM

# Bound the whole run: a watchdog that interrupts us if we overrun.
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

in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# ---------------------------------------------------------------- helpers

# json_int KEY FILE: the first integer value of "KEY" in indented JSON.
json_int() { sed -n "s/^ *\"$1\": *\(-\?[0-9][0-9]*\),\?$/\1/p" "$2" | head -n1; }

# node_status NAME: writes the node's status JSON to $WORK/NAME/status.json.
node_status() {
	local name=$1
	timeout 5 ip netns exec "${NS_OF[$name]}" "$WORK/tarzan" status -c "$WORK/$name/node.toml" -json \
		>"$WORK/$name/status.json" 2>/dev/null
}

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

# ---------------------------------------------------------------- preflight

echo "== tarzan e2e on network namespaces (run prefix $P, work dir $WORK)"
[ "$(id -u)" = 0 ] || die "preflight: must run as root (network namespaces, TUN)"
for t in ip curl iperf3 go sha256sum timeout; do
	command -v "$t" >/dev/null 2>&1 || die "preflight: $t not found (apt-get install iproute2 curl iperf3)"
done
[ -c /dev/net/tun ] || die "preflight: /dev/net/tun missing"
[ "$NODES" -ge 4 ] && [ "$NODES" -le 60 ] || die "preflight: NODES must be 4..60"

log "building tarzan and httpserve"
(cd "$REPO" && go build -o "$WORK/tarzan" ./cmd/tarzan && go build -o "$WORK/httpserve" ./scripts/httpserve) ||
	die "build: go build failed"
START=$(date +%s)
watchdog $$ "$DEADLINE_SECS" &
WATCHDOG=$!
PIDS+=("$WATCHDOG")

# ---------------------------------------------------------------- topology

declare -A NS_OF ADDR_OF
BB="${P}bb"
NODE_NAMES=()
for i in $(seq 1 "$NODES"); do NODE_NAMES+=("n$i"); NS_OF[n$i]="${P}n$i"; ADDR_OF[n$i]="10.$i.0.1"; done
NS_OF[tun]="${P}tun";   ADDR_OF[tun]=$TUN_IP
NS_OF[socks]="${P}sks"; ADDR_OF[socks]=$SOCKS_IP
NS_OF[srv]="${P}srv";   ADDR_OF[srv]=$SERVER_IP
ALL_NODES=("${NODE_NAMES[@]}" tun socks)

mkns() {
	local ns=$1
	ip netns add "$ns" || die "topology: ip netns add $ns failed"
	NSES+=("$ns")
	ip -n "$ns" link set lo up
	# Resolve nothing through the host's resolver: the only name server a
	# namespace knows is its own loopback, where nobody listens.
	mkdir -p "/etc/netns/$ns"
	printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' >"/etc/netns/$ns/resolv.conf"
	printf '127.0.0.1 localhost\n::1 localhost\n' >"/etc/netns/$ns/hosts"
}

# attach NAME PREFIX: a namespace with eth0 on the backbone bridge.
k=0
attach() {
	local name=$1 prefix=$2 ns=${NS_OF[$1]}
	k=$((k + 1))
	mkns "$ns"
	ip link add eth0 netns "$ns" type veth peer name "p$k" netns "$BB" ||
		die "topology: veth for $name failed"
	ip -n "$BB" link set "p$k" master br0 up
	ip -n "$ns" addr add "$prefix" dev eth0
	ip -n "$ns" link set eth0 up
}

log "building topology: bridge in $BB, $NODES relay/exit nodes, tun and socks clients, server"
mkns "$BB"
ip -n "$BB" link add br0 type bridge || die "topology: bridge"
ip -n "$BB" link set br0 up
for n in "${NODE_NAMES[@]}"; do
	attach "$n" "${ADDR_OF[$n]}/8"
	# Exits reach the server subnet on the bridge; their source is 10.i.0.1.
	ip -n "${NS_OF[$n]}" route add 172.31.0.0/16 dev eth0
	printf '%s %s\n' "$SERVER_IP" "$SERVER_NAME" >>"/etc/netns/${NS_OF[$n]}/hosts"
done
attach tun "$TUN_IP/8"     # no route to 172.31.0.0/16: only through the TUN
attach socks "$SOCKS_IP/8" # no route to 172.31.0.0/16 either
attach srv "$SERVER_IP/16"
ip -n "${NS_OF[srv]}" route add 10.0.0.0/8 dev eth0

# ---------------------------------------------------------------- configs

PEERS=""
for n in "${ALL_NODES[@]}"; do PEERS+="${PEERS:+, }\"${ADDR_OF[$n]}:$PORT\""; done

write_config() {
	local name=$1 dir="$WORK/$1"
	mkdir -p "$dir"
	"$WORK/tarzan" init -dir "$dir" >/dev/null || die "config: tarzan init for $name failed"
	local exit=false adapter="" adapter_opts="" exit_opts=""
	case $name in
	n*)
		exit=true
		# pnat has its own policy option (default: reject private ranges),
		# separate from exit.policy; both must accept the server subnet.
		exit_opts='policy = "accept 172.31.0.0/16;reject *:*"'
		;;
	tun)
		adapter=tun
		adapter_opts="name = \"$TUN_DEV\"
state_dir = \"$WORK/tun/state\""
		;;
	socks)
		adapter=socks
		adapter_opts='listen = "127.0.0.1:1080"'
		;;
	esac
	cat >"$dir/node.toml" <<EOF
# e2e-netns: node $name in namespace ${NS_OF[$name]}
[node]
identity = "identity.key"
data_dir = "."
control = "127.0.0.1:0"
log_level = "info"
exit = $exit

[mimics]
count = 6
epoch = "24h"

[tunnels]
hops = 3
idle_timeout = "10m"

[transport]
name = "udp"
listen = "${ADDR_OF[$name]}:$PORT"

[discovery]
name = "static"
[discovery.options]
peers = [$PEERS]
interval = "2s"

[cover]
name = "none"

[adapter]
name = "$adapter"
[adapter.options]
$adapter_opts

[exit]
name = "pnat"
policy = ["accept 172.31.0.0/16", "reject *:*"]
[exit.options]
$exit_opts
EOF
	"$WORK/tarzan" validate -c "$dir/node.toml" >/dev/null 2>"$dir/validate.err" ||
		die "config: $name: $(cat "$dir/validate.err")"
}

for n in "${ALL_NODES[@]}"; do write_config "$n"; done
mkdir -p "$WORK/tun/state"

# ---------------------------------------------------------------- processes

declare -A PID_OF
start_node() {
	local name=$1
	rm -f "$WORK/$name/control.addr"
	ip netns exec "${NS_OF[$name]}" "$WORK/tarzan" node -c "$WORK/$name/node.toml" \
		>>"$WORK/$name/node.log" 2>&1 &
	PID_OF[$name]=$!
	PIDS+=("$!")
}

# stop_node NAME: SIGTERM, wait up to 10 s, then SIGKILL. Returns 0 if it
# exited on SIGTERM.
stop_node() {
	local name=$1 pid=${PID_OF[$1]:-}
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; PID_OF[$name]=""; return 0; }
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	PID_OF[$name]=""
	return 1
}

tail_log() { echo "---- last lines of $1/node.log"; tail -n "${2:-15}" "$WORK/$1/node.log" 2>/dev/null | sed 's/^/    /'; }

log "starting server (httpserve on $SERVER_IP:$HTTP_PORT, iperf3 -s on $IPERF_PORT)"
ip netns exec "${NS_OF[srv]}" "$WORK/httpserve" -listen "$SERVER_IP:$HTTP_PORT" -size "$FILE_SIZE" \
	-log "$WORK/srv-requests.log" -sum "$WORK/srv-file.sha256" -lifetime 10m >"$WORK/httpserve.out" 2>&1 &
PIDS+=("$!")
ip netns exec "${NS_OF[srv]}" iperf3 -s -B "$SERVER_IP" -p "$IPERF_PORT" >"$WORK/iperf3-server.log" 2>&1 &
PIDS+=("$!")

log "starting ${#ALL_NODES[@]} tarzan nodes"
for n in "${ALL_NODES[@]}"; do start_node "$n"; done

for _ in $(seq 100); do grep -q ready "$WORK/httpserve.out" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$WORK/httpserve.out" || die "server: httpserve did not start: $(cat "$WORK/httpserve.out")"
WANT_SUM=$(cut -c1-64 "$WORK/srv-file.sha256")

# ---------------------------------------------------------------- check 1

# wait_converged SECS NAMES...: every node knows every peer and all its
# mimic links are up.
wait_converged() {
	local secs=$1; shift
	local names=("$@") total_nodes=${#ALL_NODES[@]} t0 line last=""
	t0=$(date +%s)
	while :; do
		local full=0 up=0 tot=0 n
		for n in "${names[@]}"; do
			if [ -n "${PID_OF[$n]:-}" ] && ! kill -0 "${PID_OF[$n]}" 2>/dev/null; then
				echo "node $n exited:"; tail_log "$n"; return 1
			fi
			node_status "$n" || continue
			local f="$WORK/$n/status.json" peers lu nm
			peers=$(json_int peers "$f"); lu=$(json_int links_up "$f")
			nm=$(grep -c '"up": ' "$f")
			[ "${peers:-0}" -eq $((total_nodes - 1)) ] && [ "$nm" -gt 0 ] && [ "${lu:-0}" -eq "$nm" ] && full=$((full + 1))
			up=$((up + ${lu:-0})); tot=$((tot + nm))
		done
		line="$full/${#names[@]} nodes know all $((total_nodes - 1)) peers with every mimic link up ($up/$tot links up)"
		[ "$line" != "$last" ] && log "  $line"
		last=$line
		[ "$full" -eq "${#names[@]}" ] && return 0
		if [ $(($(date +%s) - t0)) -ge "$secs" ]; then
			for n in "${names[@]}"; do
				local f="$WORK/$n/status.json"
				echo "    $n: peers=$(json_int peers "$f" 2>/dev/null) links_up=$(json_int links_up "$f" 2>/dev/null)/$(grep -c '"up": ' "$f" 2>/dev/null)"
			done
			return 1
		fi
		sleep 0.5
	done
}

log "check 1: membership and mimic links"
t1=$(date +%s)
if wait_converged 60 "${ALL_NODES[@]}"; then
	pass "1 membership: ${#ALL_NODES[@]} nodes know every peer, all mimic links up ($(($(date +%s) - t1)) s)"
else
	for n in "${ALL_NODES[@]}"; do tail_log "$n" 5; done
	die "1 membership: not converged within 60 s"
fi

# wait_tun SECS: the TUN device exists and carries the split default route.
wait_tun() {
	for _ in $(seq $(($1 * 5))); do
		ip -n "${NS_OF[tun]}" route show 128.0.0.0/1 2>/dev/null | grep -q "dev $TUN_DEV" && return 0
		sleep 0.2
	done
	return 1
}
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
