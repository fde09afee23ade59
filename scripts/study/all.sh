#!/usr/bin/env bash
# The whole CPU-scale study: train the six models (skipped when trained), then every claim's script, then
# nothing else; docs/results.md quotes what they print. About 75 minutes on the 2-core VM after the build.
source "$(dirname "$0")/common.sh"
timer_start
HERE=$(dirname "$0")
bash "$HERE/train.sh"
for claim in claim4_difficulty claim1_depth claim3_convergence claim5_landscape claim2_breadth; do
  bash "$HERE/$claim.sh"
done
timer_report "the whole study"
