#!/usr/bin/env bash
# Spatial API benchmark, govgis vs tipg (see bench.py). Loopback only; bounded per scenario.
# Usage: bench/api/run.sh [--requests 400] [--seconds 20] [--fresh]
set -euo pipefail
cd "$(dirname "$0")/../.."
TIPG_VERSION=1.6.1
if ! bench/.venv-tipg/bin/python -c "import tipg" 2>/dev/null; then
  echo "[bench] installing tipg==${TIPG_VERSION} into bench/.venv-tipg (PyPI)"
  python_bin="$(.venv/bin/python -c 'import sys; print(sys.base_prefix)')/bin/python3"
  "$python_bin" -m venv bench/.venv-tipg
  bench/.venv-tipg/bin/pip install -q "tipg==${TIPG_VERSION}" "uvicorn==0.54.0"
fi
exec .venv/bin/python bench/api/bench.py "$@"
