# Sourced by demo.sh and test.sh: create the virtual environment if needed and install the project
# with the extras given as $1 (e.g. "hf" or "test").
VENV="${VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e ".[$1]"
