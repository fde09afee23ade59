#!/usr/bin/env bash
# Claim 2, breadth after a depth threshold: majority vote over R = 1..64 trajectories from independent
# random initial states at depths 1..16, for the two EqR models, on the first PUZZLES (default 100) held-out
# 6x6 puzzles. One eval per model: depths are prefixes of one trajectory, breadths the first R' of 64.
# Writes docs/results/claim2_breadth.{csv,png}. About 7 minutes on the 2-core VM.
source "$(dirname "$0")/common.sh"
PUZZLES=${PUZZLES:-100}
timer_start
for seed in $SEEDS; do
  study_eval eqr "$seed" claim2 --depth 1,2,4,8,16 --breadth 1,2,4,8,16,32,64 --max-puzzles "$PUZZLES" --seed 0
done
"$PY" scripts/study/study.py breadth "$STUDY_EVAL/claim2" "$RESULTS/claim2_breadth"
timer_report "claim 2"
