#!/usr/bin/env bash
# Claim 3, convergence predicts correctness: AUROC of the final residual (smaller = "right") for separating
# right from wrong answers, with its 95% interval, at depths 1..64, and the residual traces of right and
# wrong trajectories; EqR and TRM, two seeds each, the first PUZZLES (default 500) held-out 6x6 puzzles, breadth 1.
# Writes docs/results/claim3_convergence.{csv,png}. About 4 minutes on the 2-core VM.
source "$(dirname "$0")/common.sh"
timer_start
for variant in eqr trm; do
  for seed in $SEEDS; do
    study_eval "$variant" "$seed" claim3 --depth 1,2,4,8,16,32,64 --breadth 1 --max-puzzles "${PUZZLES:-500}" --seed 0
  done
done
"$PY" scripts/study/study.py convergence "$STUDY_EVAL/claim3" "$RESULTS/claim3_convergence"
timer_report "claim 3"
