#!/usr/bin/env bash
# Trains the study's models: EqR, TRM (lambda 1, no noise, fixed init) and feed-forward (a fresh state at
# every supervision step), each from configs/quickstart.yaml (6x6 Sudoku, 20,000 generated training
# puzzles, 1,400 steps at global batch 64, depth 8) with seeds 1 and 2: one budget for all. No time limit,
# so each run takes its 1,400 steps whatever the machine's load. Two data-parallel processes when the
# machine has two cores. Existing finished runs are kept; a partial one is resumed.
#
#   bash scripts/study/train.sh            (about 5 minutes per model on the 2-core VM; 6 models)
#   VARIANTS="trm" SEEDS="1" bash scripts/study/train.sh
source "$(dirname "$0")/common.sh"
PROCS=${STUDY_PROCS:-$(( $(nproc) >= 2 ? 2 : 1 ))}
timer_start
for variant in $VARIANTS; do
  for seed in $SEEDS; do
    run=$(study_run "$variant" "$seed")
    if [[ -e "$run/checkpoints/step_1400.eqrckpt" ]]; then echo "== study: $run is trained"; continue; fi
    sets=(--set train.seed="$seed" --set train.time_limit_minutes=null --set arch.variant="$variant")
    case $variant in
      trm) sets+=(--set arch.lambda=1.0 --set arch.noise_scale=0.0 --set arch.init=fixed) ;;
      eqr|feedforward) ;;
      *) echo "study: unknown variant $variant" >&2; exit 2 ;;
    esac
    # A partial run resumes from its latest checkpoint with the config saved in it.
    args=(train --config configs/quickstart.yaml --run-dir "$run" "${sets[@]}")
    [[ -e "$run/checkpoints/latest" ]] && args=(train --resume "$run")
    echo "== study: training $variant seed $seed into $run"
    t0=$(date +%s)
    if (( PROCS > 1 )); then
      "$EQR" launch -n "$PROCS" -- "${args[@]}"
    else
      "$EQR" "${args[@]}"
    fi
    echo "== study: $variant seed $seed trained in $(( $(date +%s) - t0 )) s"
  done
done
timer_report "training"
