#!/usr/bin/env bash
# Checks that the release script's linux/amd64 binary runs a node on a
# machine without a Go toolchain: it builds the release binary, then, in a
# private mount namespace where the Go installation, the module cache and
# every `go` on PATH are hidden (empty tmpfs mounted over them) and with an
# empty environment, it runs `--version`, `init`, a node for a few
# seconds, `status` against it, and stops it; then it runs the README's
# "Your first network" code block as written (a SOCKS client, three exits,
# curl through a 3-hop tunnel to a test server). Needs root (unshare -m),
# curl and python3.
#
#   bash scripts/release-smoke.sh
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "release-smoke: needs root (mount namespace)" >&2; exit 2; }
bin="${BIN:-}" # BIN=path skips the build (a binary release.sh made)
if [ -z "$bin" ]; then
  TARGETS=linux/amd64 bash scripts/release.sh smoke >/dev/null
  bin=dist/tarzan-smoke-linux-amd64
fi
if file "$bin" 2>/dev/null | grep -q 'dynamically linked'; then
  echo "release-smoke: $bin is dynamically linked" >&2; exit 1
fi
work="$(mktemp -d /tmp/tarzan-release-smoke.XXXXXX)"
trap 'rm -rf "$work"' EXIT
cp "$bin" "$work/tarzan"

# What a Go toolchain leaves on a machine: hide all of it.
hide=()
for d in "$(go env GOROOT 2>/dev/null || true)" "$(go env GOPATH 2>/dev/null || true)" "$(go env GOCACHE 2>/dev/null || true)" "$(go env GOMODCACHE 2>/dev/null || true)" /usr/local/go /usr/lib/go; do
  [ -n "$d" ] && [ -d "$d" ] && hide+=("$d")
done
# Deepest first, once each: a directory inside a hidden one vanishes with it.
mapfile -t hide < <(printf '%s\n' "${hide[@]}" | sort -u | awk '{ print length, $0 }' | sort -rn | cut -d' ' -f2-)
echo "release-smoke: hiding ${hide[*]}" >&2

# The README's first network, its code block as the script first.sh.
awk '/^## Your first network/ { on = 1 } on && /^```sh$/ { grab = 1; next } grab && /^```$/ { exit } grab { print }' README.md > "$work/readme.sh"
[ -s "$work/readme.sh" ] || { echo "release-smoke: no sh block under README's \"Your first network\"" >&2; exit 1; }
{
  echo 'set -uo pipefail'
  echo 'trap '"'"'kill $(jobs -p) 2>/dev/null; wait'"'"' EXIT'
  sed -e 's/^sleep [0-9]*$/: README waits here, the curl below is retried instead/' \
      -e 's|^curl \(.*\)# \(.*\)$|for i in $(seq 90); do out=$(curl -sS --max-time 5 \1) \&\& break; sleep 1; done; echo "$out"; [ "$out" = "\2" ] \|\| { echo "release-smoke: README curl gave \"$out\", want \"\2\""; tail -5 *.log; exit 1; }|' \
      "$work/readme.sh"
  echo 'echo "release-smoke: ok (the README'"'"'s first network carried the fetch)"'
} > "$work/first.sh"

unshare -m --propagation private bash -s "$work" "${hide[@]}" <<'INNER'
set -euo pipefail
work="$1"; shift
for d in "$@"; do [ -d "$d" ] && mount -t tmpfs -o ro,size=1k none "$d"; done
cd "$work"
export -n $(env | cut -d= -f1 | grep -v '^PATH$') 2>/dev/null || true
env -i PATH=/usr/bin:/bin HOME="$work" bash -euo pipefail <<'RUN'
if command -v go >/dev/null 2>&1 && go version >/dev/null 2>&1; then
  echo "release-smoke: a Go toolchain is still reachable: $(command -v go)" >&2; exit 1
fi
./tarzan --version
./tarzan init -dir node -listen 127.77.0.1:17700 -socks=127.77.0.1:11080 >/dev/null
./tarzan validate -c node/node.toml
./tarzan node -c node/node.toml > node.log 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
for i in $(seq 1 100); do
  ./tarzan status -c node/node.toml > status.txt 2>&1 && break
  kill -0 $pid 2>/dev/null || { cat node.log; echo "release-smoke: the node exited" >&2; exit 1; }
  sleep 0.1
done
grep -q . status.txt || { cat node.log status.txt; echo "release-smoke: no status" >&2; exit 1; }
head -5 status.txt
kill -TERM $pid
wait $pid
trap - EXIT
echo "release-smoke: ok (static binary ran init, validate, node and status with no Go toolchain)"
RUN

# The README's "Your first network", run as written (a curl that fails is
# retried for up to 90 s, where the README waits `sleep 6`).
mkdir first && cd first && cp ../tarzan . && cp ../first.sh .
env -i PATH=/usr/bin:/bin HOME="$work" bash -m first.sh
INNER
