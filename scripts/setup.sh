#!/usr/bin/env bash
# Create .venv and install CNN Studio (pyproject.toml: pinned dependencies) into it, saying what it does.
# `scripts/setup.sh dev` adds the test tools, TensorFlow for the Keras comparison benchmark and, when run as
# root on Debian, the Chromium browser the browser tests drive.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
step() { printf '==> %s\n' "$*"; }
pip_install() {  # quiet while it works; everything pip said when it fails
  local log; log=$(mktemp)
  if ! .venv/bin/python -m pip install -q "$@" >"$log" 2>&1; then cat "$log" >&2; rm -f "$log"; exit 1; fi
  rm -f "$log"
}
if [ ! -x .venv/bin/python ]; then
  step "creating the virtual environment .venv ($("$PY" --version))"
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if [ "${1:-}" = "dev" ]; then
  step "installing CNN Studio with its test tools (PyTorch CPU, Streamlit, Captum, TensorFlow for one benchmark, pytest, Playwright); the first time takes a few minutes"
  pip_install -e ".[dev]"
  if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    step "installing Chromium for the browser tests (apt-get)"
    (apt-get update -q && apt-get install -y -q chromium chromium-driver) >/dev/null \
      || echo "warning: could not install chromium; browser tests will be skipped" >&2
  fi
else
  step "installing CNN Studio and its pinned dependencies (PyTorch CPU, Streamlit, Captum, ...); the first time takes a few minutes"
  pip_install -e .
fi
if ! .venv/bin/python -m core web-runtime >/dev/null 2>&1; then  # 15 MB from registry.npmjs.org, hash-checked
  echo "note: could not fetch ONNX Runtime Web; the Draw page predicts on the server after each stroke" \
       "(run .venv/bin/python -m core web-runtime later, or --from a tarball: see the README)" >&2
else
  step "ONNX Runtime Web $(cat static/ort/VERSION) in static/ort: the Draw page's pad predicts in the browser"
fi
step "ready: $(.venv/bin/python -c 'import torch, streamlit; print(f"torch {torch.__version__}, streamlit {streamlit.__version__}")')"
