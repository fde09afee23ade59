#!/usr/bin/env bash
# Claim 1, depth beyond training: exact accuracy at 1x, 4x, 16x and 64x the training depth (8, 32, 128, 512
# supervision steps; breadth 1, eval seed 0) for EqR, TRM and feed-forward, two training seeds each, on the
# first PUZZLES (default 150) of the held-out generated 6x6 test split.
# Writes docs/results/claim1_depth.{csv,png}. About 15 minutes on the 2-core VM.
source "$(dirname "$0")/common.sh"
PUZZLES=${PUZZLES:-150}
timer_start
for variant in $VARIANTS; do
  for seed in $SEEDS; do
    study_eval "$variant" "$seed" claim1 --depth 8,32,128,512 --breadth 1 --max-puzzles "$PUZZLES" --seed 0
  done
done
"$PY" scripts/study/study.py depth "$STUDY_EVAL/claim1" "$RESULTS/claim1_depth" "$TRAIN_DEPTH"
timer_report "claim 1"
