# Sourced by demo.sh and test.sh: create the virtual environment if needed and install the project
# with the extras given as $1 (e.g. "hf" or "test"). $PYTHON picks the interpreter (default python3).
VENV="${VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
  PY="${PYTHON:-python3}"
  if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
    echo "llm-curate needs Python >= 3.11; $PY is $("$PY" -V 2>/dev/null || echo "not found"). Set PYTHON to one, e.g. PYTHON=python3.11" >&2
    exit 1
  fi
  # --clear: a folder left by a failed attempt (no pip in it) is made again
  if ! "$PY" -m venv --clear "$VENV"; then
    echo "could not create $VENV with $PY -m venv (on Debian or Ubuntu: apt-get install python3-venv)" >&2
    exit 1
  fi
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e ".[$1]"
