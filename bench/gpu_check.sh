#!/usr/bin/env bash
# The GPU check in one command (at most 8 minutes; see bench/gpu_check.py for the steps):
#   bench/gpu_check.sh                  # on a GPU machine: writes bench/results/gpu.json
#   bench/gpu_check.sh --smoke --out F  # CPU smoke mode, as CI runs it (also chosen without a GPU)
# Python: $PYTHON, else the repository's .venv, else python3.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
exec "$PYTHON" bench/gpu_check.py "$@"
