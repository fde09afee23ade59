#!/usr/bin/env bash
# The main job on the embedded default: set up (Debian packages, OpenBLAS, Release build), then run eqr
# on puzzles it generates itself. Idempotent; safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
EQR=./build/eqr
$EQR version
echo "== quickstart: resolved config (configs/quickstart.yaml)"
$EQR config validate configs/*.yaml
