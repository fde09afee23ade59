#!/usr/bin/env bash
# Runs eqr's whole test suite (sets up and builds first if needed; both steps are idempotent).
# Extra arguments go to ctest, e.g. `scripts/test.sh -L unit` or `scripts/test.sh -R config`.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${EQR_BUILD_DIR:-build}
bash scripts/setup.sh --build-dir "$BUILD_DIR"
start=$(date +%s)
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)" "$@"
echo "== tests took $(( $(date +%s) - start )) s"
