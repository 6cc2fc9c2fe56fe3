#!/usr/bin/env bash
# Issue 14's recipe trials: short runs of configs/recipe_whole.yaml with one change each, then every EMA decoder
# scored on held-out pairs against the pretrained one (benchmarks/score_decoders.py). Run alone on the machine.
#   bash scripts/recipe_trials.sh            # trains what is missing (runs/trial_*), then scores
#   STEPS=200 bash scripts/recipe_trials.sh  # the trials' length (default 200)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
STEPS=${STEPS:-200}
FEATURE=(--set discriminator=feature --set discriminator_init= --set lr_d=2e-4)
declare -A TRIALS=(
  [pixel]=""
  [noadv]="${FEATURE[*]} --set weights.adv=0"  # no adversarial term: which D trains alongside does not matter
  [feature]="${FEATURE[*]}"
  [feature_adv02]="${FEATURE[*]} --set weights.adv=0.2"
  [feature_gram3]="${FEATURE[*]} --set weights.style_gram=3"
)
ORDER=(${TRIALS_ONLY:-pixel noadv feature feature_adv02 feature_gram3})
decoders=()
for name in "${ORDER[@]}"; do
  out=runs/trial_$name
  final=$out/checkpoints/$(printf 'step_%07d' "$STEPS")
  if [ ! -f "$final/state.json" ]; then
    echo "== trial $name: ${TRIALS[$name]:-recipe as is}"
    resume=(); [ -f "$out/checkpoints/latest" ] && resume=(--resume)
    # shellcheck disable=SC2086
    /usr/bin/time -f "$name: %e s" .venv/bin/semstyle train --config configs/recipe_whole.yaml --out "$out" \
      --steps "$STEPS" --ckpt-every 100 --no-progress ${TRIALS[$name]} "${resume[@]}"
  fi
  decoders+=("$final/decoder_ema.safetensors")
done
$PY benchmarks/score_decoders.py "${decoders[@]}"
