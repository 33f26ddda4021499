#!/usr/bin/env bash
# Builds the release binaries into dist/: static (CGO_ENABLED=0), reproducible
# paths (-trimpath), stamped with the version and commit (`tarzan --version`),
# plus SHA256SUMS.
#
#   bash scripts/release.sh [VERSION]     # VERSION defaults to `git describe`
#
# linux/amd64 and linux/arm64 are full nodes (SOCKS or TUN client, relay,
# exit). darwin/amd64, darwin/arm64 and windows/amd64 are SOCKS clients and
# relays: the TUN adapter is Linux-only and says so when a node starts with
# adapter.name = "tun" there. Set TARGETS="linux/amd64 ..." to build fewer.
set -euo pipefail
cd "$(dirname "$0")/.."

version="${1:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}"
commit="$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
targets="${TARGETS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64}"
pkg=github.com/tarzan-net/tarzan/internal/version
ldflags="-s -w -X $pkg.Release=$version -X $pkg.Commit=$commit"

# dist/ also holds the systemd unit (dist/systemd): remove only what an
# earlier release build left.
mkdir -p dist
rm -f dist/tarzan-* dist/SHA256SUMS
failed=()
for t in $targets; do
  os="${t%/*}"; arch="${t#*/}"
  out="dist/tarzan-$version-$os-$arch"
  [ "$os" = windows ] && out="$out.exe"
  echo "== $t -> $out" >&2
  if ! CGO_ENABLED=0 GOOS="$os" GOARCH="$arch" go build -trimpath -ldflags "$ldflags" -o "$out" ./cmd/tarzan; then
    failed+=("$t")
  fi
done
(cd dist && sha256sum tarzan-* > SHA256SUMS)
cat dist/SHA256SUMS
if [ ${#failed[@]} -gt 0 ]; then
  echo "release: these targets failed to build: ${failed[*]}" >&2
  exit 1
fi
