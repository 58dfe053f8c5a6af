#!/usr/bin/env bash
# Set up everything on a fresh machine: a virtual environment in .venv with torch, torchvision
# (open_clip imports it) and the pack's runtime and test requirements. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import torch, torchvision" 2>/dev/null; then
    # torch 2.14.1 / torchvision 0.29.1 are the pair that import together here (see README);
    # inside ComfyUI the host's own torch is used instead.
    .venv/bin/python -m pip install -q torch==2.14.1 torchvision==0.29.1
fi
.venv/bin/python -m pip install -q -r requirements-test.txt
