#!/usr/bin/env bash
# Set up a virtual environment (if needed) and run the main job end to end on the bundled sample
# data with the embedded DuckDB store. Usage: scripts/demo.sh [store path]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh hf,filters,dedup,report
DB="${1:-data/demo/curate.duckdb}"
exec "$VENV/bin/curate" --db "$DB" demo
