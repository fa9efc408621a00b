#!/usr/bin/env bash
# check.sh — verify systemd/openpush.service and print its exposure score.
# Usage: systemd/check.sh [MAX_EXPOSURE]   (default 2.0; fails above it)
# Runs offline: needs systemd-analyze (Debian package systemd), not a running systemd.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
max=${1:-2.0}
if ! command -v systemd-analyze >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# verify insists that ExecStart's binary exists: point it at one that does.
sed 's#/usr/local/bin/openpush#/bin/true#' "$here/openpush.service" > "$tmp/openpush.service"
systemd-analyze verify "$tmp/openpush.service"
echo "systemd-analyze verify: clean"
score=$(systemd-analyze security --offline=yes "$tmp/openpush.service" 2>&1 |
  sed -n 's/.*Overall exposure level for openpush.service: \([0-9.]*\).*/\1/p')
[ -n "$score" ] || { echo "no exposure score from systemd-analyze security" >&2; exit 1; }
echo "systemd-analyze security: exposure $score (max $max)"
awk -v s="$score" -v m="$max" 'BEGIN { exit !(s <= m) }'
