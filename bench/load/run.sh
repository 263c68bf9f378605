#!/usr/bin/env bash
# Load benchmark: 50 concurrent clients, mixed workload, the first minute after a cold start and the next.
# Loopback only; bounded (two phases of --seconds). Usage: bench/load/run.sh [--seconds 60] [--clients 50]
set -euo pipefail
cd "$(dirname "$0")/../.."
exec .venv/bin/python bench/load/run.py "$@"
