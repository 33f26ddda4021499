#!/usr/bin/env bash
# bench-flows.sh: the IP service's flow figures, two tarzan binaries
# side by side, interleaved (A B A B ...), on a 12-node loopback network
# each run (scripts/benchflows): 16 concurrent curl --socks5-hostname
# fetches through one SOCKS5 port (one tunnel): aggregate, mean, slowest
# flow; the 1 KiB time to first byte (median of 20); tunnel setup
# (median of 10). Prints the medians over the runs of each binary.
#
#   scripts/bench-flows.sh BASE_BINARY NEW_BINARY [RUNS=3] [FLOWS=16] [BYTES=16777216]
#
# Needs curl. Every network it starts is stopped before the next one.
set -euo pipefail
base=${1:?base binary}; new=${2:?new binary}; runs=${3:-3}; flows=${4:-16}; size=${5:-16777216}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/bench-flows.XXXXXX)
trap 'rm -rf "$work"' EXIT
(cd "$here" && go build -o "$work/benchflows" ./scripts/benchflows)
for i in $(seq "$runs"); do
	for side in base new; do
		exe=$base; [ "$side" = new ] && exe=$new
		"$work/benchflows" -exe "$exe" -flows "$flows" -size "$size" -ttfb 20 -setups 10 >>"$work/$side.jsonl"
		tail -n1 "$work/$side.jsonl" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("'"$side"' run '"$i"': aggregate %.2f MB/s, slowest %.2f, mean %.2f, TTFB %.1f ms, setup %.1f ms, CPU %.1f s" % (r["aggregate_mb_s"], r["slowest_mb_s"], r["mean_mb_s"], r["ttfb_ms_median"], r["setup_ms_median"], r["cpu_s_flows"]))' >&2
	done
done
python3 - "$work/base.jsonl" "$work/new.jsonl" <<'PY'
import json, statistics as st, sys
def load(p): return [json.loads(l) for l in open(p)]
b, n = load(sys.argv[1]), load(sys.argv[2])
rows = [("aggregate MB/s", "aggregate_mb_s"), ("slowest flow MB/s", "slowest_mb_s"), ("mean flow MB/s", "mean_mb_s"),
        ("slowest / mean", None), ("1 KiB TTFB ms", "ttfb_ms_median"), ("SOCKS connected ms", "socks_connected_ms_median"),
        ("first fetch TTFB ms", "first_ttfb_ms"), ("tunnel setup ms", "setup_ms_median"), ("tunnel RTT ms", "tunnel_rtt_ms"),
        ("CPU-s, all node processes, 16 flows", "cpu_s_flows")]
def val(r, k): return r["slowest_mb_s"] / r["mean_mb_s"] if k is None else r.get(k, 0)
print("%-38s %10s %10s %7s   samples base | new" % ("metric (median of runs)", "base", "new", "new/base"))
for name, k in rows:
    bv, nv = [val(r, k) for r in b], [val(r, k) for r in n]
    mb, mn = st.median(bv), st.median(nv)
    print("%-38s %10.2f %10.2f %7.2f   %s | %s" % (name, mb, mn, mn / mb if mb else 0, " ".join("%.2f" % x for x in bv), " ".join("%.2f" % x for x in nv)))
for side, rs in (("base", b), ("new", n)):
    drops = {}
    for r in rs:
        for k, v in (r.get("drop_counters_all_nodes") or {}).items():
            drops[k] = drops.get(k, 0) + v
    print(side, "drops (all nodes, all runs):", drops)
PY
