#!/usr/bin/env bash
# Set up a virtual environment (if needed) and run the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh test
export OMP_NUM_THREADS=1
exec "$VENV/bin/python" -m pytest -q "$@"
