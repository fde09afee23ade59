#!/usr/bin/env bash
# Runs eqr's whole test suite (sets up and builds first if needed; both steps are idempotent).
# Extra arguments go to ctest, e.g. `scripts/test.sh -L unit` or `scripts/test.sh -R config`.
# `scripts/test.sh --torch pip [ctest args]` does the same against the pinned LibTorch 2.x wheel
# (build-torch2/, see scripts/setup.sh); the `cuda` tests skip, saying so, where no GPU is present.
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH=debian
if [ "${1:-}" = "--torch" ]; then TORCH="${2:?--torch needs debian or pip}"; shift 2; fi
case "$TORCH" in
  debian) BUILD_DIR=${EQR_BUILD_DIR:-build} ;;
  pip) BUILD_DIR=${EQR_BUILD_DIR:-build-torch2} ;;
  *) echo "test.sh: --torch '$TORCH': expected debian or pip" >&2; exit 2 ;;
esac
bash scripts/setup.sh --torch "$TORCH" --build-dir "$BUILD_DIR"
start=$(date +%s)
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)" "$@"
echo "== tests ($BUILD_DIR, torch $TORCH) took $(( $(date +%s) - start )) s"
