#!/usr/bin/env bash
# Land and planning benchmark (see run.py). Usage: bench/planning/run.sh [--size 100] [--repeat 5]
set -euo pipefail
cd "$(dirname "$0")/../.."
exec .venv/bin/python bench/planning/run.py "$@"
