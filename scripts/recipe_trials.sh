#!/usr/bin/env bash
# Issue 14's recipe trials: short runs of configs/recipe_whole.yaml with one change each, then every EMA decoder
# scored on held-out pairs against the pretrained one (benchmarks/score_decoders.py). Run alone on the machine.
#   bash scripts/recipe_trials.sh            # trains what is missing (runs/trial_*), then scores
#   STEPS=200 bash scripts/recipe_trials.sh  # the trials' length (default 200)
#   STEPS=400 TRIALS_ONLY="bf16 bf16_noadv" SCORE_ARGS="--contents 6 --every 2" bash scripts/recipe_trials.sh
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
  # the eighth session's (a CPU with AMX: bf16 steps at 0.5 s; 400 steps each, scored on 6 x 14 pairs)
  [bf16]="${FEATURE[*]} --set precision=bf16"
  [bf16_noadv]="${FEATURE[*]} --set precision=bf16 --set weights.adv=0"
  [bf16_style2]="${FEATURE[*]} --set precision=bf16 --set weights.style_gram=2 --set weights.style_meanstd=20"
  [bf16_lr3e5]="${FEATURE[*]} --set precision=bf16 --set lr=3e-5"
  # content photos at the scoring size (256 px long side) instead of BSDS's stored 481 px
  [c256]="${FEATURE[*]} --set precision=bf16 --set content_size=256"
  [c256_lr3e5]="${FEATURE[*]} --set precision=bf16 --set content_size=256 --set lr=3e-5"
  # the fine-tunes win on their training styles and lose on held-out ones: more style variety
  [aug3]="${FEATURE[*]} --set precision=bf16 --set content_size=256 --set lr=3e-5 --set style_augment=3"
  # crop targets (every crop a new style, as AdaIN's own training) from style images at the scoring size
  [crop256]="--set precision=bf16 --set content_size=256 --set lr=3e-5 --set style_targets=crop --set style_bank_size=256"
  [crop256_lr1e4]="--set precision=bf16 --set content_size=256 --set style_targets=crop --set style_bank_size=256"
  [crop256_style2]="--set precision=bf16 --set content_size=256 --set lr=3e-5 --set style_targets=crop --set style_bank_size=256 --set weights.style_gram=2 --set weights.style_meanstd=20"
  [aug3_lr1e5]="${FEATURE[*]} --set precision=bf16 --set content_size=256 --set lr=1e-5 --set style_augment=3"
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
# shellcheck disable=SC2086
$PY benchmarks/score_decoders.py "${decoders[@]}" ${SCORE_ARGS:-}
