#!/usr/bin/env bash
# Builds and tests plugins as an outside author would, against the SDK
# module (github.com/tarzan-net/tarzan/sdk) served from this checkout:
#
#  1. writes a module proxy directory (GOPROXY's file layout) that serves
#     sdk/ as the version the node's go.mod requires (scripts/sdkproxy);
#  2. for each example (sdk/examples/transport-xor, cover-burst): copies
#     its .go files, and nothing else, into an empty module in a temp dir,
#     `go get`s the SDK, `go mod tidy`, builds the plugin, vets it and runs
#     its tests (the transport conformance suite, in and out of process);
#  3. fails if the author's go.mod or go.sum names gonum, gVisor,
#     wireguard, prometheus or the node's module.
#
# Network: the SDK comes from the local proxy directory; third-party
# modules from this machine's module cache (as a file:// proxy) and then
# from this machine's GOPROXY. A fresh GOMODCACHE in the temp dir makes
# sure no earlier copy of the SDK is used. Everything is removed on exit.
#
# Usage: scripts/sdk-outside.sh [EXAMPLE...]   (default: every example)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
mod=github.com/tarzan-net/tarzan/sdk
ver=$(awk -v m="$mod" '$1 == m && $2 ~ /^v/ { print $2; exit }' go.mod)
if [ -z "$ver" ]; then
  echo "sdk-outside: go.mod does not require $mod" >&2; exit 1
fi
examples=("$@")
[ ${#examples[@]} -gt 0 ] || examples=(transport-xor cover-burst)

tmp=$(mktemp -d /tmp/tarzan-sdk-outside.XXXXXX)
cleanup() { chmod -R u+w "$tmp" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

go run ./scripts/sdkproxy -dir sdk -module "$mod" -version "$ver" -out "$tmp/proxy" \
  -time "$(git log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)"

machine_cache=$(go env GOMODCACHE)
machine_proxy=$(go env GOPROXY)
export GOPROXY="file://$tmp/proxy,file://$machine_cache/cache/download,$machine_proxy"
export GOMODCACHE="$tmp/modcache"
export GONOSUMDB="$mod" # not in the checksum database: served from this checkout
export GONOPROXY= GOPRIVATE= GOFLAGS= GOWORK=off GOTOOLCHAIN=local
export GOPATH="$tmp/gopath"

fail=0
for ex in "${examples[@]}"; do
  src="$repo/sdk/examples/$ex"
  [ -d "$src" ] || { echo "sdk-outside: no example $ex" >&2; exit 1; }
  work="$tmp/author-$ex"
  mkdir -p "$work"
  cp "$src"/*.go "$work"/
  echo "== $ex: an empty module outside the repository ($work)"
  (
    cd "$work"
    go mod init "example.com/outside-$ex" >/dev/null 2>&1
    go get "$mod@$ver"
    go mod tidy
    go build -o "$ex.bin" .
    go vet ./...
    go test -count=1 ./...
  ) || { echo "FAIL: $ex does not build or pass its tests against $mod@$ver" >&2; fail=1; continue; }
  echo "-- $ex: go.mod"
  cat "$work/go.mod"
  if ! grep -q "^require $mod $ver\$\|^[[:space:]]$mod $ver\$" "$work/go.mod"; then
    echo "FAIL: $ex's go.mod does not require $mod $ver" >&2; fail=1
  fi
  # go.mod: no node-only module at all. go.sum: none either, except
  # gonum.org/v1/gonum, which grpc's own go.mod requires (its tests'
  # round-robin statistics): `go mod tidy` records its checksum, nothing
  # of it is compiled (the go list check below).
  if grep -n -E 'gonum\.org|gvisor\.dev|golang\.zx2c4\.com/wireguard|prometheus|github\.com/tarzan-net/tarzan ' "$work/go.mod" ||
     grep -n -E 'gonum\.org/v1/plot|gvisor\.dev|golang\.zx2c4\.com/wireguard|prometheus|github\.com/tarzan-net/tarzan ' "$work/go.sum"; then
    echo "FAIL: $ex's go.mod/go.sum list node-only dependencies (above)" >&2; fail=1
  fi
  if (cd "$work" && go list -deps -test ./...) | grep -E '^(gonum\.org|gvisor\.dev|golang\.zx2c4\.com|github\.com/prometheus)'; then
    echo "FAIL: $ex compiles node-only packages (above)" >&2; fail=1
  fi
  echo "-- $ex: $(wc -l < "$work/go.sum") go.sum lines; neither go.mod nor the build has gonum, gVisor, wireguard, prometheus"
done
[ $fail = 0 ] && echo "sdk-outside: ok (${examples[*]} against $mod@$ver from a local proxy)"
exit $fail
