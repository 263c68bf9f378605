#!/usr/bin/env bash
# Emergency routing benchmark (see run.py). Usage: bench/emergency/run.sh [--sizes 50000,500000]
set -euo pipefail
cd "$(dirname "$0")/../.."
exec timeout 3000 "${PYTHON:-.venv/bin/python}" bench/emergency/run.py "$@"
