# shellcheck shell=bash
# The namespace test bed shared by scripts/e2e-netns.sh and
# scripts/e2e-faults.sh: tarzan node processes in Linux network namespaces
# joined by veth pairs to one bridge, a kernel TUN client and a SOCKS5
# client, exits running pnat, and a server (httpserve, iperf3) in its own
# namespace. See scripts/README.md for the topology.
#
# Source it, after setting (all optional):
#   SUITE          name of the suite: work directory /tmp/tarzan-SUITE.*,
#                  final line "SUITE: PASS|FAIL" (upper case)
#   NODES          relay/exit nodes (4..60, default 8)
#   KEEP           1 keeps the work directory
#   DEADLINE_SECS  hard bound on the run after the build
#   FILE_SIZE      bytes of the server's file
#   IDLE_OF[NAME]  tunnels.idle_timeout of node NAME (default 10m)
# then call tb_preflight, tb_build, tb_topology, tb_configs, tb_start.
#
# Traffic goes only to addresses inside the namespaces this creates, or to
# loopback. Everything it creates (namespaces, veths, the bridge,
# /etc/netns entries, processes) is removed on exit, failure or Ctrl-C by
# the EXIT trap set here.

SUITE=${SUITE:-e2e-netns}
NODES=${NODES:-8}
KEEP=${KEEP:-0}
DEADLINE_SECS=${DEADLINE_SECS:-170}
FILE_SIZE=${FILE_SIZE:-$((10 * 1024 * 1024))}
PORT=7700
HTTP_PORT=8080
IPERF_PORT=5201
SERVER_IP=172.31.0.1
SERVER_NAME=server.tarzan.test
TUN_IP=10.100.0.1
SOCKS_IP=10.101.0.1
TUN_DEV=tarzan0

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
P="tz$$-"                                   # unique prefix for this run's namespaces
# shellcheck source=suite.sh
source "$(dirname "${BASH_SOURCE[0]}")/suite.sh" # WORK, START, log/pass/fail/die, summary, watchdog, the EXIT trap

NSES=()       # namespaces created, in creation order
PIDS=()       # processes started (every long-running one)
declare -A NS_OF ADDR_OF PID_OF
declare -A IDLE_OF

# ---------------------------------------------------------------- cleanup

# suite_cleanup (called by suite.sh's EXIT trap): stop every process this
# run started, then remove its namespaces.
suite_cleanup() {
	log "cleaning up"
	local p
	for p in "${PIDS[@]}"; do kill -CONT "$p" 2>/dev/null; kill -TERM "$p" 2>/dev/null; done
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
	local left
	left=$(ip netns list 2>/dev/null | grep -c "^$P" || true)
	[ "$left" != 0 ] && echo "warning: $left namespaces with prefix $P left behind"
}

in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# ---------------------------------------------------------------- helpers

# json_int KEY FILE: the first integer value of "KEY" in indented JSON.
json_int() { sed -n "s/^ *\"$1\": *\(-\?[0-9][0-9]*\),\?$/\1/p" "$2" | head -n1; }

# json_str KEY FILE: the first string value of "KEY" in indented JSON.
json_str() { sed -n "s/^ *\"$1\": *\"\([^\"]*\)\",\?$/\1/p" "$2" | head -n1; }

# node_status NAME: writes the node's status JSON to $WORK/NAME/status.json.
node_status() {
	local name=$1
	timeout 5 ip netns exec "${NS_OF[$name]}" "$WORK/tarzan" status -c "$WORK/$name/node.toml" -json \
		>"$WORK/$name/status.json" 2>/dev/null
}

# counter NAME KEY: a counter of node NAME from a fresh status (0 if absent).
counter() {
	node_status "$1" || { echo 0; return; }
	local v
	v=$(json_int "$2" "$WORK/$1/status.json")
	echo "${v:-0}"
}

# ---------------------------------------------------------------- preflight

# tb_preflight TOOLS...: root, /dev/net/tun and the tools (besides the
# ones every suite needs).
tb_preflight() {
	echo "== tarzan $SUITE on network namespaces (run prefix $P, work dir $WORK)"
	[ "$(id -u)" = 0 ] || die "preflight: must run as root (network namespaces, TUN)"
	local t
	for t in ip curl go sha256sum timeout "$@"; do
		command -v "$t" >/dev/null 2>&1 || die "preflight: $t not found (apt-get install iproute2 curl iperf3)"
	done
	[ -c /dev/net/tun ] || die "preflight: /dev/net/tun missing"
	[ "$NODES" -ge 4 ] && [ "$NODES" -le 60 ] || die "preflight: NODES must be 4..60"
}

# tb_build: builds tarzan and httpserve, then starts the watchdog (the
# deadline counts from here).
tb_build() {
	log "building tarzan and httpserve"
	(cd "$REPO" && go build -o "$WORK/tarzan" ./cmd/tarzan && go build -o "$WORK/httpserve" ./scripts/httpserve) ||
		die "build: go build failed"
	START=$(date +%s)
	watchdog $$ "$DEADLINE_SECS" &
	WATCHDOG=$!
	PIDS+=("$WATCHDOG")
}

# ---------------------------------------------------------------- topology

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
TB_VETHS=0
attach() {
	local name=$1 prefix=$2 ns=${NS_OF[$1]}
	TB_VETHS=$((TB_VETHS + 1))
	mkns "$ns"
	ip link add eth0 netns "$ns" type veth peer name "p$TB_VETHS" netns "$BB" ||
		die "topology: veth for $name failed"
	ip -n "$BB" link set "p$TB_VETHS" master br0 up
	ip -n "$ns" addr add "$prefix" dev eth0
	ip -n "$ns" link set eth0 up
}

tb_topology() {
	BB="${P}bb"
	NODE_NAMES=()
	local i n
	for i in $(seq 1 "$NODES"); do NODE_NAMES+=("n$i"); NS_OF[n$i]="${P}n$i"; ADDR_OF[n$i]="10.$i.0.1"; done
	NS_OF[tun]="${P}tun";   ADDR_OF[tun]=$TUN_IP
	NS_OF[socks]="${P}sks"; ADDR_OF[socks]=$SOCKS_IP
	NS_OF[srv]="${P}srv";   ADDR_OF[srv]=$SERVER_IP
	ALL_NODES=("${NODE_NAMES[@]}" tun socks)

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
}

# ---------------------------------------------------------------- configs

write_config() {
	local name=$1 dir="$WORK/$1"
	mkdir -p "$dir"
	[ -f "$dir/identity.key" ] || "$WORK/tarzan" init -dir "$dir" >/dev/null || die "config: tarzan init for $name failed"
	local exit=false adapter="" adapter_opts="" exit_opts="" idle=${IDLE_OF[$name]:-10m}
	case $name in
	n*)
		exit=true # exit.policy below reaches pnat through the core
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
	cat >"$dir/node.toml" <<EOT
# $SUITE: node $name in namespace ${NS_OF[$name]}
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
idle_timeout = "$idle"

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
EOT
	"$WORK/tarzan" validate -c "$dir/node.toml" >/dev/null 2>"$dir/validate.err" ||
		die "config: $name: $(cat "$dir/validate.err")"
}

tb_configs() {
	PEERS=""
	local n
	for n in "${ALL_NODES[@]}"; do PEERS+="${PEERS:+, }\"${ADDR_OF[$n]}:$PORT\""; done
	for n in "${ALL_NODES[@]}"; do write_config "$n"; done
	mkdir -p "$WORK/tun/state"
}

# ---------------------------------------------------------------- processes

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

# tb_start: the server (httpserve with a FILE_SIZE file, iperf3 -s) and
# every node; sets WANT_SUM to the file's sha256.
tb_start() {
	log "starting server (httpserve on $SERVER_IP:$HTTP_PORT, iperf3 -s on $IPERF_PORT)"
	ip netns exec "${NS_OF[srv]}" "$WORK/httpserve" -listen "$SERVER_IP:$HTTP_PORT" -size "$FILE_SIZE" \
		-log "$WORK/srv-requests.log" -sum "$WORK/srv-file.sha256" -lifetime "$((DEADLINE_SECS + 60))s" \
		>"$WORK/httpserve.out" 2>&1 &
	PIDS+=("$!")
	if command -v iperf3 >/dev/null 2>&1; then
		ip netns exec "${NS_OF[srv]}" iperf3 -s -B "$SERVER_IP" -p "$IPERF_PORT" >"$WORK/iperf3-server.log" 2>&1 &
		PIDS+=("$!")
	fi

	log "starting ${#ALL_NODES[@]} tarzan nodes"
	local n
	for n in "${ALL_NODES[@]}"; do start_node "$n"; done

	for _ in $(seq 300); do grep -q ready "$WORK/httpserve.out" 2>/dev/null && break; sleep 0.1; done
	grep -q ready "$WORK/httpserve.out" || die "server: httpserve did not start: $(cat "$WORK/httpserve.out")"
	WANT_SUM=$(cut -c1-64 "$WORK/srv-file.sha256")
}

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
			nm=$(grep -c '"rate": ' "$f") # one per mimic link ("up" is in the links list too)
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
				echo "    $n: peers=$(json_int peers "$f" 2>/dev/null) links_up=$(json_int links_up "$f" 2>/dev/null)/$(grep -c '"rate": ' "$f" 2>/dev/null)"
			done
			return 1
		fi
		sleep 0.5
	done
}

# wait_tun SECS: the TUN device exists and carries the split default route.
wait_tun() {
	for _ in $(seq $(($1 * 5))); do
		ip -n "${NS_OF[tun]}" route show 128.0.0.0/1 2>/dev/null | grep -q "dev $TUN_DEV" && return 0
		sleep 0.2
	done
	return 1
}
