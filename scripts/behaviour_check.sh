#!/usr/bin/env bash
# Behaviour fingerprint of an eqr build, for refactors that must not change what eqr computes (issue 21):
# a ci_tiny training run (Sudoku and Maze, checkpoints at steps 3 and 6, periodic evaluations), `eqr eval` of
# both (fixed and adaptive scheduler, breadth 1 and 4) and `eqr solve`, written to OUT. Compare two outputs
# with scripts/behaviour_compare.py, which ignores wall-clock fields and the git SHA.
#   usage: [EQR_CONFIG=ci_tiny.yaml of the checkout EQR was built from] scripts/behaviour_check.sh EQR OUT
# Runs are deterministic on one machine (float32, one thread: configs/ci_tiny.yaml); float results depend on
# the CPU's kernels, so compare outputs made on the same machine. Use the same OUT path for both builds (the
# config each run stores holds it).
set -euo pipefail
EQR=$1
OUT=$2
CFG=${EQR_CONFIG:-"$(cd "$(dirname "$0")/.." && pwd)/configs/ci_tiny.yaml"}  # the config of the build under test
rm -rf "$OUT"
mkdir -p "$OUT"
MAZE=(--set data.task=maze --set arch.seq_len=49 --set arch.vocab_size=6 --set arch.board_height=7
      --set arch.board_width=7)
"$EQR" train --config "$CFG" --set "output_root=$OUT" --set name=s --no-progress >"$OUT/s.train.log" 2>&1
"$EQR" train --config "$CFG" "${MAZE[@]}" --set "output_root=$OUT" --set name=m --no-progress >"$OUT/m.train.log" 2>&1
"$EQR" eval --checkpoint "$OUT/s" --out "$OUT/se" --set 'eval.depth=[1,2,4]' >"$OUT/se.log" 2>&1
"$EQR" eval --checkpoint "$OUT/m" --out "$OUT/me" --set 'eval.depth=[2,4]' >"$OUT/me.log" 2>&1
"$EQR" eval --checkpoint "$OUT/s" --out "$OUT/sa" --scheduler adaptive --set 'eval.breadth=[1,4]' >"$OUT/sa.log" 2>&1
"$EQR" solve --checkpoint "$OUT/s" --depth 2 --breadth 2 '1..4..1.2..4....' >"$OUT/solve.txt" 2>&1 || true
echo "behaviour_check: wrote $OUT"
