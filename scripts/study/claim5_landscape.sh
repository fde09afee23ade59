#!/usr/bin/env bash
# Claim 5, the attractor landscape: R = 16 trajectories per puzzle from independent random initial states,
# run to 32 steps (4x the training depth); per puzzle, the number of distinct final grids and whether the
# majority basin is the right answer. EqR models, the first PUZZLES (default 150) held-out 6x6 puzzles.
# Writes docs/results/claim5_landscape.{csv,png}. About 5 minutes on the 2-core VM.
source "$(dirname "$0")/common.sh"
PUZZLES=${PUZZLES:-150}
timer_start
for seed in $SEEDS; do
  study_eval eqr "$seed" claim5 --depth 32 --breadth 16 --max-puzzles "$PUZZLES" --seed 0
done
"$PY" scripts/study/study.py landscape "$STUDY_EVAL/claim5" "$RESULTS/claim5_landscape"
timer_report "claim 5"
