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
    # Where pip has to download them from PyPI they are the CUDA build (about 5.5 GB installed), so
    # say so plainly before a full disk turns it into an OSError; no cache copy of the wheels.
    free_gb=$(df -Pk .venv | awk 'NR==2 {print int($4 / 1048576)}')
    if [ "${free_gb:-0}" -lt 12 ]; then
        echo "setup.sh: only ${free_gb} GB free on $(df -P .venv | awk 'NR==2 {print $6}');" \
             "torch + torchvision may need up to 12 GB while installing. Free some space and rerun." >&2
    fi
    .venv/bin/python -m pip install -q --no-cache-dir torch==2.14.1 torchvision==0.29.1
fi
.venv/bin/python -m pip install -q -r requirements-test.txt
