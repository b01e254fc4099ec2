#!/usr/bin/env bash
# Set up a virtual environment (if needed) and run the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh test
# Label Studio, for the review tests, in its own virtual environment (it pins many packages); made once
"$VENV/bin/python" -c "from curation.review.labelstudio_server import ensure_venv; ensure_venv()"
export OMP_NUM_THREADS=1
exec "$VENV/bin/python" -m pytest -q "$@"
