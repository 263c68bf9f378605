#!/usr/bin/env bash
# Hostile red-line uploads (zip bomb, 1M vertices): status, seconds, RSS and temp files; optional --peer CHECKOUT.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec .venv/bin/python bench/uploads/run.py "$@"
