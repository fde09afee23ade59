# Shared by scripts/study/*.sh (sourced): paths, the eqr binary, the study's models and an eval helper.
# The study: three variants of the quickstart model (configs/quickstart.yaml: 6x6 Sudoku, width 64, trained
# 1,400 steps at depth 8) trained on the same generated data with the same budget, two seeds each
# (scripts/study/train.sh); each claim script evaluates them and writes CSV + PNG into docs/results/.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
EQR=${EQR:-$ROOT/build/eqr}
PY=${PYTHON:-/usr/bin/python3}; [[ -x "$PY" ]] || PY=python3
STUDY_RUNS=${STUDY_RUNS:-runs/study}          # trained models: $STUDY_RUNS/<variant>-s<seed>
STUDY_EVAL=${STUDY_EVAL:-$STUDY_RUNS/eval}    # raw eval reports (large; not committed)
RESULTS=${RESULTS:-docs/results}              # small CSV + PNG (committed)
SEEDS=${SEEDS:-"1 2"}
VARIANTS=${VARIANTS:-"eqr trm feedforward"}
TRAIN_DEPTH=8                                 # the quickstart's arch.halt_max_steps
mkdir -p "$RESULTS" "$STUDY_EVAL"
[[ -x "$EQR" ]] || { echo "study: $EQR not found; run bash scripts/setup.sh first" >&2; exit 2; }

study_run() { echo "$STUDY_RUNS/$1-s$2"; }

need_model() {
  local run; run=$(study_run "$1" "$2")
  [[ -e "$run/checkpoints/latest" ]] || { echo "study: no trained model at $run; run scripts/study/train.sh" >&2; exit 2; }
}

# study_eval VARIANT SEED NAME [eqr eval flags...]: evaluates the model's EMA weights on its held-out test
# split into $STUDY_EVAL/NAME/VARIANT-sSEED (skipped when report.json is already there, so a script can be
# re-run after an interruption).
study_eval() {
  local variant=$1 seed=$2 name=$3; shift 3
  need_model "$variant" "$seed"
  local out="$STUDY_EVAL/$name/$variant-s$seed"
  if [[ -f "$out/report.json" && -z "${STUDY_FORCE:-}" ]]; then echo "== study: $out exists (STUDY_FORCE=1 redoes it)"; return; fi
  echo "== study: eval $variant seed $seed -> $out"
  "$EQR" eval --checkpoint "$(study_run "$variant" "$seed")" --out "$out" "$@"
}

timer_start() { STUDY_T0=$(date +%s); }
timer_report() { echo "== study: $1 took $(( $(date +%s) - STUDY_T0 )) s"; }
