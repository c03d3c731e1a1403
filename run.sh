#!/usr/bin/env bash
# The kit's main job on a fresh machine:
#   ./run.sh         install what is missing, train on sample_dataset through the local NSML,
#                    submit the best checkpoint and print its CER (the last line).
#   ./run.sh test    install what is missing, then run the test suite.
# Environment: PYTHON (default python3), MINUTES (training budget, default 4), DATASET (default ./sample_dataset).
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
MINUTES=${MINUTES:-4}
DATASET=${DATASET:-./sample_dataset}

install() {
  if ! "$PYTHON" -c "import torch" 2>/dev/null; then
    # torch first: a plain `torch` requirement with none installed can pull GBs of CUDA packages.
    echo "[run.sh] installing torch"
    "$PYTHON" -m pip install torch==2.13.0 || "$PYTHON" -m pip install "torch>=2.0"
  fi
  "$PYTHON" -m pip install -q -r requirements.txt
  "$PYTHON" -c "import nsml" 2>/dev/null || "$PYTHON" -m pip install -q -e nsml_local
}

install
if [ "${1:-}" = "test" ]; then
  "$PYTHON" -m pip install -q pytest
  exec "$PYTHON" -m pytest -q tests
fi

# Same commands as on NSML: `nsml run -d DATASET`, then `nsml submit SESSION CHECKPOINT`.
NSML=("$PYTHON" -m nsml)
log=$(mktemp)
"${NSML[@]}" run -d "$DATASET" -e main.py -a "--max_minutes $MINUTES" | tee "$log"
session=$(sed -n 's/^Session \(.*\) started$/\1/p' "$log" | head -n 1)
rm -f "$log"
[ -n "$session" ] || { echo "[run.sh] training session did not start" >&2; exit 1; }
"${NSML[@]}" model ls "$session"
"${NSML[@]}" submit "$session" best
