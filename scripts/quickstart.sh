#!/usr/bin/env bash
# The main job on the embedded default: set up (Debian packages, OpenBLAS, Release build), then train a
# small EqR on 6x6 puzzles that eqr generates itself (configs/quickstart.yaml; no download), evaluate it on
# the 1,000 held-out generated puzzles at depths 1..32 (training depth is 8), and plot the curves.
# Breadth (several initial states per puzzle): scripts/sweep_depth_breadth.sh RUN_DIR. Safe to re-run: every run
# gets its own directory.
#
#   bash scripts/quickstart.sh [extra `eqr train` flags, e.g. --set train.max_steps=200]
#   bash scripts/quickstart.sh --maze [flags]   the maze quickstart instead (configs/maze_quickstart.yaml: 9x9
#                                               mazes, the same steps; runs/maze-quickstart-<time>/)
#
# Writes runs/quickstart-<time>/ (config, metrics.jsonl, checkpoints, eval/) and its eval/final/
# (report.json, report.csv, trace.csv, PNGs).
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=configs/quickstart.yaml
PREFIX=quickstart
if [[ "${1:-}" == "--maze" ]]; then
  CONFIG=configs/maze_quickstart.yaml
  PREFIX=maze-quickstart
  shift
fi
bash scripts/setup.sh --target eqr  # the tests are built by scripts/test.sh
EQR=./build/eqr
$EQR version
RUN=runs/$PREFIX-$(date +%Y%m%d-%H%M%S)
# Two data-parallel processes (one thread each) when the machine has two cores or more: at this small shape
# LibTorch's intra-op threads leave most of the second core idle, while two Gloo ranks on halves of each
# global batch train 1.9-2.1x more rows/s on the 2-core VM (docs/training.md, "Data parallel"). The result is
# the same training up to per-rank random streams (test TrainDistributed.TrainerTwoRanksEqualOneProcess).
PROCS=${EQR_QUICKSTART_PROCS:-$(( $(nproc) >= 2 ? 2 : 1 ))}
echo "== quickstart: training ($CONFIG, $PROCS process(es)) into $RUN"
if (( PROCS > 1 )); then
  $EQR launch -n "$PROCS" -- train --config "$CONFIG" --run-dir "$RUN" "$@"
else
  $EQR train --config "$CONFIG" --run-dir "$RUN" "$@"
fi
echo "== quickstart: evaluating the EMA weights on the held-out test split"
$EQR eval --checkpoint "$RUN" --depth 1,2,4,8,16,32 --breadth 1 --out "$RUN/eval/final"
PY=/usr/bin/python3; [[ -x "$PY" ]] || PY=python3
"$PY" scripts/plot_eval.py "$RUN/eval/final" --aggregator majority_vote
echo "== quickstart: done. Report: $RUN/eval/final/report.csv; plots: $RUN/eval/final/*.png"
