#!/usr/bin/env bash
# Burst-isolation benchmark (see run.py). Usage: bench/isolation/run.sh [--side 230] [--n 300]
set -euo pipefail
cd "$(dirname "$0")/../.."
exec .venv/bin/python bench/isolation/run.py "$@"
