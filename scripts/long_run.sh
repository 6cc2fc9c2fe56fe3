#!/usr/bin/env bash
# Issue 14's long run and its ablation, one after the other, each resumable (re-run this to continue):
# (c) configs/recipe_long.yaml as is, (b) the same without the adversarial term. Run alone on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
run() {  # out, extra --set flags
  local out=$1; shift
  [ -f "$out/checkpoints/step_0004000/state.json" ] && return
  local resume=(); [ -f "$out/checkpoints/latest" ] && resume=(--resume)
  /usr/bin/time -f "$out: %e s" .venv/bin/semstyle train --config configs/recipe_long.yaml --out "$out" \
    --no-progress "$@" "${resume[@]}"
}
run runs/recipe_long
run runs/recipe_long_noadv --set weights.adv=0
