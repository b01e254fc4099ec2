#!/usr/bin/env bash
# Install what the tests need and run them; this is what CI runs (.ci/run). Extra arguments go to pytest.
#   - headless Chromium for the report's browser test (tests/curation/test_report.py), through apt-get when
#     missing: as root, or with sudo; without either the script says what to install and stops;
#   - a CJK font (fonts-wqy-zenhei) for the report's test that Chinese text draws with real glyphs, the same way;
#   - the virtual environment with the test extras (scripts/_venv.sh);
#   - Label Studio, for the review tests, in its own virtual environment (it pins many packages).
set -euo pipefail
cd "$(dirname "$0")/.."

have_chromium() {
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1
}

install_chromium() {
  have_chromium && return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo="sudo"
    else
      echo "scripts/test.sh: the report's browser test needs Chromium, which is not installed; installing it needs" >&2
      echo "root (this user is not root, and there is no sudo). Install it, then run this again:" >&2
      echo "    apt-get install -y chromium    (as root on Debian; elsewhere your system's chromium package)" >&2
      return 1
    fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "scripts/test.sh: the report's browser test needs Chromium, which is not installed, and there is no" >&2
    echo "apt-get here. Install Chromium with your system's package manager (a 'chromium' or 'chromium-browser'" >&2
    echo "command on PATH), then run this again." >&2
    return 1
  fi
  echo "scripts/test.sh: installing Chromium with ${sudo:+$sudo }apt-get, for the report's browser test" >&2
  if ! $sudo apt-get update -qq || \
     ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; then
    echo "scripts/test.sh: installing Chromium failed (see apt-get's message above)" >&2
    return 1
  fi
  if ! have_chromium; then
    echo "scripts/test.sh: apt-get installed the chromium package, but no chromium command is on PATH" >&2
    return 1
  fi
}

have_cjk_font() {
  command -v fc-list >/dev/null 2>&1 && [ -n "$(fc-list :lang=zh family 2>/dev/null)" ]
}

install_cjk_font() {
  have_cjk_font && return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo="sudo"
    else
      echo "scripts/test.sh: the report's browser test needs a CJK font (for Chinese text), and none is installed;" >&2
      echo "installing one needs root (this user is not root, and there is no sudo). Install it, then run this again:" >&2
      echo "    apt-get install -y fonts-wqy-zenhei    (as root on Debian; elsewhere a Noto Sans CJK or WenQuanYi font)" >&2
      return 1
    fi
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "scripts/test.sh: the report's browser test needs a CJK font (for Chinese text), and none is installed, and" >&2
    echo "there is no apt-get here. Install one with your system's package manager (WenQuanYi Zen Hei or Noto Sans CJK;" >&2
    echo "'fc-list :lang=zh' lists it once installed), then run this again." >&2
    return 1
  fi
  echo "scripts/test.sh: installing a CJK font (fonts-wqy-zenhei) with ${sudo:+$sudo }apt-get, for the report's browser test" >&2
  if ! $sudo apt-get update -qq || \
     ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends fonts-wqy-zenhei fontconfig >/dev/null; then
    echo "scripts/test.sh: installing fonts-wqy-zenhei failed (see apt-get's message above)" >&2
    return 1
  fi
  if ! have_cjk_font; then
    echo "scripts/test.sh: apt-get installed fonts-wqy-zenhei, but 'fc-list :lang=zh' lists no CJK font" >&2
    return 1
  fi
}

install_chromium
install_cjk_font
source scripts/_venv.sh test
"$VENV/bin/python" -c "from curation.review.labelstudio_server import ensure_venv; ensure_venv()"
export OMP_NUM_THREADS=1
exec "$VENV/bin/python" -m pytest -q "$@"
