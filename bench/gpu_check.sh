#!/usr/bin/env bash
# The GPU check in one command on a fresh GPU machine (at most 8 minutes; see bench/gpu_check.py):
#   bench/gpu_check.sh                  # on a GPU machine: writes bench/results/gpu.json
#   bench/gpu_check.sh --smoke --out F  # CPU smoke mode, as CI runs it (also chosen without a GPU)
# Python: $PYTHON, else an active virtual/conda environment, else the repository's .venv (created
# here, as ./run.sh does, when missing). torch and the requirements are installed when missing:
# the install is not counted in the check's 8 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
  if [ -n "${VIRTUAL_ENV:-}${CONDA_PREFIX:-}" ]; then
    PYTHON=python
  else
    if [ ! -x .venv/bin/python ]; then
      echo "[gpu_check.sh] creating .venv"
      python3 -m venv .venv
    fi
    PYTHON=.venv/bin/python
  fi
fi
if ! "$PYTHON" -c "import torch, numpy, librosa, soundfile, tqdm" 2>/dev/null; then
  echo "[gpu_check.sh] installing torch and requirements.txt into $("$PYTHON" -c 'import sys; print(sys.prefix)')"
  # torch first, the version the suite runs (./run.sh does the same); any torch 2 if that one is not offered
  "$PYTHON" -c "import torch" 2>/dev/null || "$PYTHON" -m pip install -q torch==2.13.0 || "$PYTHON" -m pip install -q "torch>=2.0"
  "$PYTHON" -m pip install -q -r requirements.txt
fi
exec "$PYTHON" bench/gpu_check.py "$@"
