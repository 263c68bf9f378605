#!/usr/bin/env bash
# Import 1,000,000 generated polygons (the demo city parcels as survey patches) from a GeoPackage and print rows/second (target: under 2 minutes).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec .venv/bin/python bench/import_parcels/run.py "$@"
