#!/usr/bin/env bash
# Build the desktop bundle and smoke-test it from outside the checkout (packaging/smoke_test.py).
#   bash packaging/smoke_test.sh [--no-build]      (--no-build: test the archive already built)
# Slow (the build takes minutes and the bundle is GBs), so it is not part of the test suite or CI.
# Needs Xvfb, and the venv ($EMOCAP_PYTHON, else .venv/bin/python) for the comparison timings,
# Pillow's screen grab and the ufbx read-back of the FBX.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${EMOCAP_PYTHON:-$PWD/.venv/bin/python}"
if [ "${1:-}" != "--no-build" ]; then
  started=$(date +%s)
  EMOCAP_PYTHON="$PY" bash packaging/build.sh
  echo "build.sh took $(( $(date +%s) - started )) s"
fi
archive=$(ls -t packaging/dist/emocap-*-linux-x86_64.tar.gz | head -1)
exec "$PY" packaging/smoke_test.py "$archive" --venv-python "$PY"
