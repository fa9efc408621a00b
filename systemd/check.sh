#!/usr/bin/env bash
# check.sh — verify systemd/openpush.service and the node template (openpush-node@.service)
# and print their exposure scores.
# Usage: systemd/check.sh [MAX_EXPOSURE]   (default 2.0; fails above it)
# Runs offline: needs systemd-analyze (Debian package systemd), not a running systemd.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
max=${1:-2.0}
if ! command -v systemd-analyze >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# Each unit, and the node template as an instance; verify insists that ExecStart's binary
# exists: point it at one that does.
check() {
  local file=$1 unit=$2
  sed 's#/usr/local/bin/openpush#/bin/true#' "$here/$file" > "$tmp/$file"
  [ "$file" = "$unit" ] || ln -sf "$tmp/$file" "$tmp/$unit"
  systemd-analyze verify "$tmp/$unit"
  echo "$unit: systemd-analyze verify: clean"
  local score
  score=$(systemd-analyze security --offline=yes "$tmp/$unit" 2>&1 |
    sed -n "s/.*Overall exposure level for $unit: \([0-9.]*\).*/\1/p")
  [ -n "$score" ] || { echo "no exposure score for $unit from systemd-analyze security" >&2; exit 1; }
  echo "$unit: systemd-analyze security: exposure $score (max $max)"
  awk -v s="$score" -v m="$max" 'BEGIN { exit !(s <= m) }'
}
check openpush.service openpush.service
check openpush-node@.service openpush-node@a.service
