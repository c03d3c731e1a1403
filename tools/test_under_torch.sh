#!/usr/bin/env bash
# Run (part of) the test suite under another torch release, e.g. the one in the NSML image that
# setup.py names, so "works on 2.13" is not taken for "works on the image":
#   tools/test_under_torch.sh 2.7.0 tests/test_kit.py tests/test_nsml_local_api.py
#   tools/test_under_torch.sh 2.7.0 -q tests/test_models.py -k conformer
# VERSION is a torch release; the rest are pytest arguments (default: -q tests/test_kit.py).
# Environment:
#   VENV         the virtual environment to create or reuse (default /tmp/venv-torchVERSION);
#                an existing one that already has this torch is reused as it is
#   PYTHON       the Python that creates it (default python3; 3.10 or newer)
#   TORCH_INDEX  an extra pip index for torch. PyPI's Linux torch is the CUDA build (several GB with
#                its NVIDIA packages); without a GPU, TORCH_INDEX=https://download.pytorch.org/whl/cpu
#                gives the CPU build of the same release (about 190 MB). Default: the indexes pip is
#                configured with.
# The tests run from the repository root (tests/conftest.py puts it first on sys.path; the tests that
# start `python -m nsml` set PYTHONPATH to nsml_local themselves).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 1 ] || [[ "$1" == -* ]]; then
  echo "usage: tools/test_under_torch.sh VERSION [pytest args]   (e.g. 2.7.0 -q tests/test_kit.py)" >&2
  exit 2
fi
VERSION=$1
shift
[ $# -gt 0 ] || set -- -q tests/test_kit.py
VENV=${VENV:-/tmp/venv-torch$VERSION}
say() { echo "[test_under_torch] $*"; }

if ! "$VENV/bin/python" -c "import sys, torch; sys.exit(torch.__version__.split('+')[0] != '$VERSION')" 2>/dev/null; then
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV with ${PYTHON:-python3}"
    "${PYTHON:-python3}" -m venv "$VENV"
  fi
  say "installing torch==$VERSION${TORCH_INDEX:+ (extra index $TORCH_INDEX)}"
  # No -q: the torch download is the long part, and pip's progress bar shows it is moving.
  # shellcheck disable=SC2086  # the index option and its value, or nothing
  "$VENV/bin/python" -m pip install ${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"} "torch==$VERSION"
fi
"$VENV/bin/python" -m pip install -q -r requirements.txt pytest
# The local NSML's own dependencies (matplotlib for `nsml plot`), installed as run.sh does; the tests
# still import it from this checkout's nsml_local (PYTHONPATH), not from a copy.
"$VENV/bin/python" -m pip install -q -e nsml_local
"$VENV/bin/python" -c "import torch, numpy; print('[test_under_torch] torch', torch.__version__, '| numpy', numpy.__version__)"
exec "$VENV/bin/python" -m pytest "$@"
