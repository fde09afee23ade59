#!/usr/bin/env bash
# Depth x breadth sweep of a checkpoint in ONE `eqr eval` run (depths are prefixes of one trajectory,
# breadths the first R' of R trajectories, so the grid costs its largest point), then the plots.
#
#   scripts/sweep_depth_breadth.sh CKPT [DATA] [extra eqr eval flags...]
#
# DATA: a Sudoku CSV (*.csv) or a built dataset directory; omitted = the checkpoint config's data section.
# Environment (defaults in brackets):
#   DEPTHS [16,32,64,128,256]  BREADTHS [1,4,16]  SCHEDULER [fixed]  SEED [0]  MAX_PUZZLES [0 = all]
#   OUT [eval_out/sweep_<ckpt name>]  EQR [build/eqr, else eqr on PATH]  DEVICE [auto]  PYTHON [/usr/bin/python3: Debian python3-matplotlib]
# Example: DEPTHS=16,64,256 BREADTHS=1,8 MAX_PUZZLES=1000 \
#            scripts/sweep_depth_breadth.sh runs/q/checkpoints/step_5000.eqrckpt ../shared/data/external/tdoku_magictour_top1465/magictour_top1465.csv
set -euo pipefail

if [[ $# -lt 1 || "$1" == "-h" || "$1" == "--help" ]]; then
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
CKPT=$1
shift
DATA_ARGS=()
if [[ $# -ge 1 && "$1" != -* ]]; then
  if [[ "$1" == *.csv ]]; then DATA_ARGS=(--csv "$1"); else DATA_ARGS=(--data "$1"); fi
  shift
fi
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
if [[ -z "${EQR:-}" ]]; then
  if [[ -x "$ROOT/build/eqr" ]]; then EQR="$ROOT/build/eqr"; else EQR=eqr; fi
fi
NAME=$(basename "${CKPT%.*}")
OUT=${OUT:-eval_out/sweep_${NAME}}

"$EQR" eval --checkpoint "$CKPT" "${DATA_ARGS[@]}" \
  --depth "${DEPTHS:-16,32,64,128,256}" --breadth "${BREADTHS:-1,4,16}" \
  --scheduler "${SCHEDULER:-fixed}" --seed "${SEED:-0}" --max-puzzles "${MAX_PUZZLES:-0}" \
  --device "${DEVICE:-auto}" --out "$OUT" "$@"

AGG=majority_vote
PY=${PYTHON:-/usr/bin/python3}; [[ -x "$PY" ]] || PY=python3
"$PY" "$HERE/plot_eval.py" "$OUT" --aggregator "$AGG"
echo "sweep: $OUT/report.json, $OUT/report.csv and PNGs in $OUT"
