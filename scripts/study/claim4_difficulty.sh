#!/usr/bin/env bash
# Claim 4, compute follows difficulty, and the adaptive stop rule: on a fresh set of 6x6 puzzles with a
# spread of difficulty (PUZZLES_EASY from the generator as it comes, PUZZLES_HARD that need at least one
# backtrack of the exact solver; seed 777, so not the training puzzles' stream), each EqR model runs
#   fixed             the full cap: 64x the training depth (512 steps)
#   adaptive_default  `--scheduler adaptive` and nothing else (the default stop rule)
#   adaptive_tol      the residual rule alone with a hand-picked tol (answer rule off), for comparison
#   adaptive_k2/k8    the answer rule with 2 and 8 unchanged steps
# at breadth 1 (eval seed 0), with per-trajectory steps (row traces). Difficulty: rounds of naked/hidden
# singles the puzzle needs (computed in study.py), then the solver's backtracks for the rest.
# Writes docs/results/claim4_difficulty.{csv,png}. About 12 minutes on the 2-core VM.
source "$(dirname "$0")/common.sh"
EASY=${PUZZLES_EASY:-200}
HARD=${PUZZLES_HARD:-150}
CAP=$(( 64 * TRAIN_DEPTH ))
SET="$STUDY_EVAL/claim4/puzzles.csv"
timer_start
mkdir -p "$STUDY_EVAL/claim4"
if [[ ! -f "$SET" ]]; then
  "$EQR" data generate --geometry 6x6 --count "$EASY" --seed 777 --out "$STUDY_EVAL/claim4/easy.csv"
  "$EQR" data generate --geometry 6x6 --count "$HARD" --seed 778 --min-rating 1 --out "$STUDY_EVAL/claim4/hard.csv"
  { cat "$STUDY_EVAL/claim4/easy.csv"; tail -n +2 "$STUDY_EVAL/claim4/hard.csv"; } > "$SET"
fi
for seed in $SEEDS; do
  common=(--csv "$SET" --breadth 1 --seed 0 --depth "$CAP" --row-traces)
  study_eval eqr "$seed" claim4/fixed "${common[@]}" --scheduler fixed
  study_eval eqr "$seed" claim4/adaptive_default "${common[@]}" --scheduler adaptive
  study_eval eqr "$seed" claim4/adaptive_tol "${common[@]}" --scheduler adaptive --answer-patience 0 --tol "${TOL:-4}" --patience 2
  study_eval eqr "$seed" claim4/adaptive_k2 "${common[@]}" --scheduler adaptive --answer-patience 2
  study_eval eqr "$seed" claim4/adaptive_k8 "${common[@]}" --scheduler adaptive --answer-patience 8
done
"$PY" scripts/study/study.py difficulty "$STUDY_EVAL/claim4" "$RESULTS/claim4_difficulty" "$SET"
timer_report "claim 4"
