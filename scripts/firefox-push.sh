#!/usr/bin/env bash
# Manual check of the autopush door with a real, unmodified Firefox (headless): Firefox's
# push service connects to openpush, a page's service worker subscribes with a VAPID key
# (a /wpush/v2/ endpoint), pywebpush sends to it (aes128gcm, then aesgcm) and the service
# worker's push event must report the decrypted text; a message sent while Firefox is
# closed must arrive when it starts again. See tests/interop/firefox/firefox_push.py.
# CI runs it after the interop check (.ci/run installs Debian's firefox-esr).
# Usage: bash scripts/firefox-push.sh [OPENPUSH_BINARY]   (default: a debug build)
#        FIREFOX=/path/to/firefox  WORKDIR=DIR (logs, profile; default a temporary dir)
#        venv in target/interop-venv, or $INTEROP_VENV, as scripts/interop.sh
set -euo pipefail
cd "$(dirname "$0")/.."

firefox=${FIREFOX:-$(command -v firefox-esr || command -v firefox || true)}
if [ -z "$firefox" ]; then
    echo "no Firefox found (on Debian: apt-get install firefox-esr; or set FIREFOX)" >&2
    exit 2
fi

venv=${INTEROP_VENV:-target/interop-venv}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PYTHONDONTWRITEBYTECODE=1
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" || { echo "python3 -m venv failed (on Debian: apt-get install python3-venv)" >&2; exit 2; }
fi
"$venv/bin/python" -m pip install -q -r tests/interop/requirements.txt

if [ $# -ge 1 ]; then
    openpush=$1
else
    cargo build --locked -q
    openpush=target/debug/openpush
fi

args=("$openpush" --firefox "$firefox")
[ -n "${WORKDIR:-}" ] && args+=(--workdir "$WORKDIR")
timeout 300 "$venv/bin/python" tests/interop/firefox/firefox_push.py "${args[@]}"
