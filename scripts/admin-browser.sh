#!/usr/bin/env bash
# End-to-end check of the admin page in a real headless Chromium: tests/browser/admin.cjs
# (puppeteer-core, jsQR and pngjs from npm, pinned by tests/browser/package-lock.json,
# installed with `npm ci` into target/admin-browser) drives Debian's /usr/bin/chromium
# against the debug binary. Screenshots: target/admin-browser/screenshots/admin-*.png (CI
# keeps them); with UPDATE_DOCS=1 they are also copied to docs/images/.
# Usage: bash scripts/admin-browser.sh [OPENPUSH_BINARY]   (CHROMIUM=/path overrides)
# Needs: chromium (apt-get install chromium), node >= 18 and npm.
set -euo pipefail
cd "$(dirname "$0")/.."

chromium=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
    echo "no Chromium at $chromium (on Debian: apt-get install chromium; or set CHROMIUM)" >&2
    exit 2
fi
command -v npm >/dev/null || { echo "no npm (on Debian: apt-get install npm)" >&2; exit 2; }

work=target/admin-browser
mkdir -p "$work"
if ! cmp -s tests/browser/package-lock.json "$work/package-lock.json" || [ ! -d "$work/node_modules" ]; then
    cp tests/browser/package.json tests/browser/package-lock.json "$work/"
    # --ignore-scripts: puppeteer-core downloads no browser; Debian's is used.
    (cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi

if [ $# -ge 1 ]; then
    openpush=$1
else
    cargo build --locked -q
    openpush=target/debug/openpush
fi

rm -rf "$work/screenshots"
CHROMIUM=$chromium NODE_PATH=$PWD/$work/node_modules \
    timeout 180 node tests/browser/admin.cjs "$openpush" "$work/screenshots"
if [ "${UPDATE_DOCS:-0}" = 1 ]; then
    cp "$work"/screenshots/admin-*.png docs/images/
fi
