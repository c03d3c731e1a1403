#!/usr/bin/env bash
# The kit's main job on a fresh machine:
#   ./run.sh         install what is missing into ./.venv, train on sample_dataset through the local
#                    NSML, submit the best checkpoint and print its CER (the last line).
#   ./run.sh test    install what is missing, then run the test suite.
# Environment:
#   EPOCHS     training epochs (default 40): a fixed amount of work, so the CER does not depend on
#              how fast the machine is; EPOCHS=20 is a quicker look, EPOCHS=100 a better model
#   DATASET    dataset folder (default ./sample_dataset)
#   KEEP_RUNS  sessions of earlier ./run.sh runs to keep besides this one (default 0); older ones are
#              removed with `nsml rm`, so repeated runs do not fill the disk
#   PYTHON     the Python that creates .venv (default python3; 3.10 or newer)
#   TORCH_INDEX  a pip index to take torch from (e.g. https://download.pytorch.org/whl/cu128); by
#              default: on a machine without a GPU (no working nvidia-smi) the CPU build from
#              https://download.pytorch.org/whl/cpu, unless pip is configured with an index of its own
# An activated virtual environment (or conda environment) is used as it is instead of .venv.
set -euo pipefail
cd "$(dirname "$0")"
START=$(date +%s)
EPOCHS=${EPOCHS:-40}
DATASET=${DATASET:-./sample_dataset}
KEEP_RUNS=${KEEP_RUNS:-0}

say() { echo "[run.sh] $*"; }

# The code needs Python 3.10 or newer (dataclass(slots=True), zip(strict=True)); say so before installing anything.
need_python() {
  if ! "$1" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    found=$("$1" --version 2>&1) || found="not a working Python"
    echo "[run.sh] Python 3.10 or newer is needed; $1 is: $found." \
         "Install python3.10+ and run: PYTHON=python3.12 ./run.sh (or activate an environment with one)" >&2
    exit 1
  fi
}

# Our own environment: never install into the user's Python (PEP 668 refuses that on Debian/Ubuntu).
if [ -n "${VIRTUAL_ENV:-}${CONDA_PREFIX:-}" ]; then
  PY=python
  need_python "$PY"
  say "using the active environment ${VIRTUAL_ENV:-${CONDA_PREFIX:-}}"
else
  if [ ! -x .venv/bin/python ] || ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
    need_python "${PYTHON:-python3}"
    rm -rf .venv  # a half-made one (venv without ensurepip) cannot be repaired in place
    say "creating .venv with ${PYTHON:-python3}"
    if ! "${PYTHON:-python3}" -m venv .venv; then
      rm -rf .venv
      echo "[run.sh] cannot create a virtual environment. On Debian/Ubuntu: sudo apt install python3-venv;" \
           "or activate an environment of your own and run ./run.sh again." >&2
      exit 1
    fi
  fi
  PY=.venv/bin/python
  need_python "$PY"  # a .venv made earlier by an older Python
fi

has_gpu() { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }

# Where torch comes from. PyPI's Linux torch is the CUDA build: with its NVIDIA packages several GB,
# useless without a GPU. So without one, the CPU build from PyTorch's index, as an extra index
# (torch==2.13.0 then resolves to 2.13.0+cpu) -- unless pip already has an index or wheel folder
# configured (a company mirror, a CI cache): that configuration is the user's choice and is kept.
torch_source() {
  if [ -n "${TORCH_INDEX:-}" ]; then
    echo "--extra-index-url $TORCH_INDEX"
  elif ! has_gpu && [ -z "${PIP_INDEX_URL:-}${PIP_EXTRA_INDEX_URL:-}${PIP_FIND_LINKS:-}" ] &&
       ! "$PY" -m pip config list 2>/dev/null | grep -Eq '(index-url|find-links)='; then
    echo "--extra-index-url https://download.pytorch.org/whl/cpu"
  fi
}

install() {
  if ! "$PY" -c "import torch" 2>/dev/null; then
    # torch first: a plain `torch` requirement with none installed can pull GBs of CUDA packages.
    source=$(torch_source)
    if [ -n "${TORCH_INDEX:-}" ]; then kind="the build TORCH_INDEX offers"
    elif has_gpu; then kind="the CUDA build (a GPU is present; with its NVIDIA packages a download of several GB)"
    else kind="the CPU build (no GPU found; a download of about 190 MB)"; fi
    say "installing torch 2.13.0, $kind${source:+, from ${source#--extra-index-url }}${source:-, from the indexes pip is configured with}"
    # No -q: the download of torch is the long part, and pip's progress bar shows it is moving.
    # shellcheck disable=SC2086  # $source is an option and its value, or nothing
    "$PY" -m pip install $source torch==2.13.0 || "$PY" -m pip install $source "torch>=2.0"
    if ! has_gpu && "$PY" -c "import sys, torch; sys.exit(torch.version.cuda is None)" 2>/dev/null; then
      say "note: this is torch's CUDA build on a machine without a GPU (it runs on the CPU, but takes GBs);" \
          "the CPU build: $PY -m pip install --force-reinstall torch --index-url https://download.pytorch.org/whl/cpu"
    fi
  fi
  "$PY" -m pip install -q -r requirements.txt
  "$PY" -c "import nsml" 2>/dev/null || "$PY" -m pip install -q -e nsml_local
}

install
INSTALLED=$(date +%s)
if [ "${1:-}" = "test" ]; then
  "$PY" -m pip install -q pytest
  exec "$PY" -m pytest -q tests
fi

# Same commands as on NSML: `nsml run -d DATASET`, then `nsml submit SESSION CHECKPOINT`.
NSML=("$PY" -m nsml)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"${NSML[@]}" run -d "$DATASET" -e main.py -a "--epochs $EPOCHS" | tee "$log"
session=$(sed -n 's/^Session \(.*\) started$/\1/p' "$log" | head -n 1)
[ -n "$session" ] || { echo "[run.sh] training session did not start" >&2; exit 1; }
TRAINED=$(date +%s)
"${NSML[@]}" model ls "$session"
"${NSML[@]}" submit "$session" best | tee "$log"
submitted=$(sed -n 's/^Session \(.*\) started$/\1/p' "$log" | head -n 1)

# Tidy: earlier ./run.sh runs' sessions beyond KEEP_RUNS are removed (their list is in the NSML home).
runs="${NSML_LOCAL_HOME:-$HOME/.nsml_local}/run.sh-sessions"
echo "$session $submitted" >> "$runs"
old=$(awk -v keep=$((KEEP_RUNS + 1)) '{line[NR] = $0} END {for (i = 1; i <= NR - keep; i++) print line[i]}' "$runs")
for s in $old; do "${NSML[@]}" rm "$s" >/dev/null 2>&1 || true; done
tail -n $((KEEP_RUNS + 1)) "$runs" > "$runs.tmp" && mv "$runs.tmp" "$runs"

cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
say "done in $(( $(date +%s) - START )) s: install $((INSTALLED - START)) s, training $EPOCHS epochs" \
    "$((TRAINED - INSTALLED)) s, submit $(( $(date +%s) - TRAINED )) s (${cpu:-this CPU}, $(getconf _NPROCESSORS_ONLN) cores)"
tail -n 1 "$log"  # CER: <value>, the last line
