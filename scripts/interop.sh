#!/usr/bin/env bash
# Interop check: the real binary (debug build) driven by third-party client libraries
# from PyPI (apprise, pywebpush, websockets), see tests/interop/interop.py.
# Usage: bash scripts/interop.sh    (venv in target/interop-venv, or $INTEROP_VENV)
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${INTEROP_VENV:-target/interop-venv}
reqs=tests/interop/requirements.txt
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PYTHONDONTWRITEBYTECODE=1

make_venv() { python3 -m venv "$venv" >/dev/null 2>&1 && [ -x "$venv/bin/python" ]; }

python=""
if [ -x "$venv/bin/python" ] || make_venv; then
    python=$venv/bin/python
else
    rm -rf "$venv"
    # Debian ships the venv module separately.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "python3 -m venv failed: installing python3-venv" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
        make_venv && python=$venv/bin/python
    fi
fi

if [ -n "$python" ]; then
    "$python" -m pip install -q -r "$reqs"
else
    echo "no venv (on Debian: apt-get install python3-venv); falling back to pip install --user" >&2
    python=python3
    python3 -m pip install -q --user -r "$reqs" \
        || python3 -m pip install -q --user --break-system-packages -r "$reqs"
fi

cargo build --locked -q
timeout 180 "$python" tests/interop/interop.py target/debug/openpush
cargo build --locked -q -p openpush-client && timeout 120 "$python" tests/interop/client_interop.py target/debug/openpush target/debug/openpush-client
