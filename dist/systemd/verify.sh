#!/usr/bin/env bash
# verify.sh TARZAN_BINARY: check tarzan.service, alone and with the TUN
# drop-in, with `systemd-analyze verify`; any warning fails. The unit's
# ExecStart is pointed at the given binary (verify wants it to exist), and
# the drop-in is appended to a copy of the unit, which is how systemd
# reads it (later assignments in [Service] add to or replace earlier ones).
# Also prints `systemd-analyze security`'s exposure score for the unit.
set -euo pipefail
bin=$(readlink -f "${1:?usage: verify.sh TARZAN_BINARY}")
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d /tmp/tarzan-unit.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
command -v systemd-analyze >/dev/null || { echo "verify.sh: systemd-analyze not installed (apt-get install systemd)"; exit 1; }
sed "s|^ExecStart=/usr/local/bin/tarzan |ExecStart=$bin |" "$here/tarzan.service" > "$tmp/tarzan.service"
{ cat "$tmp/tarzan.service"; echo; cat "$here/tarzan-tun.conf"; } > "$tmp/tarzan-tun.service"
fail=0
for u in tarzan.service tarzan-tun.service; do
	out=$(systemd-analyze verify "$tmp/$u" 2>&1) || fail=1
	if [ -n "$out" ]; then
		echo "$u:"; echo "$out"; fail=1
	else
		echo "$u: systemd-analyze verify: clean"
	fi
done
systemd-analyze security --offline=true "$tmp/tarzan.service" 2>/dev/null | tail -n1 || true
exit $fail
