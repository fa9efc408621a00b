#!/usr/bin/env bash
# Interop check: the real binary (debug build) driven by third-party client libraries
# from PyPI (apprise, pywebpush, websockets), see tests/interop/interop.py, and Home
# Assistant's ntfy library (aiontfy), see tests/interop/home_assistant.py.
# Usage: bash scripts/interop.sh    (venvs in target/interop-venv and target/interop-ha-venv,
# or $INTEROP_VENV and $INTEROP_HA_VENV)
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

# Home Assistant's ntfy library wants Python >= 3.12: the newest one found (pyenv's too),
# else python3 with pip's --ignore-requires-python (aiontfy 0.8.6 runs on 3.11 as well).
ha_venv=${INTEROP_HA_VENV:-target/interop-ha-venv}
ha_reqs=tests/interop/requirements-ha.txt
if [ ! -x "$ha_venv/bin/python" ]; then
    ha_python=""
    for candidate in python3.14 python3.13 python3.12 "$HOME"/.pyenv/versions/3.1[2-9]*/bin/python3; do
        if command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
            ha_python=$candidate
            break
        fi
    done
    "${ha_python:-python3}" -m venv "$ha_venv"
fi
if "$ha_venv/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then
    "$ha_venv/bin/python" -m pip install -q -r "$ha_reqs"
else
    echo "no Python >= 3.12 here: aiontfy on $("$ha_venv/bin/python" -V) (--ignore-requires-python)" >&2
    "$ha_venv/bin/python" -m pip install -q --ignore-requires-python -r "$ha_reqs"
fi
timeout 120 "$ha_venv/bin/python" tests/interop/home_assistant.py target/debug/openpush
