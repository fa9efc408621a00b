#!/usr/bin/env bash
# Crash test: posts from four threads while the server is killed with SIGKILL at a
# different moment each round, restarted, and checked: every message that got a 200 is
# delivered, none that got an error is, and the store opens cleanly every time.
# Usage: scripts/crash-test.sh [ROUNDS]   (default 200; the test suite runs 5)
set -euo pipefail
cd "$(dirname "$0")/.."
export OPENPUSH_CRASH_ROUNDS="${1:-200}"
cargo test --release --test it crash:: -- --nocapture 2>&1 | grep -E "kill -9|test result|panicked"
