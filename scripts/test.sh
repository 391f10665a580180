#!/usr/bin/env bash
# Run the whole test suite in .venv, on a virtual X display (the GUI tests need real OpenGL windows).
#   bash scripts/test.sh [pytest args]
# Test files run in parallel, one worker per core up to four (pytest-xdist; a file's tests stay in
# one worker, so its module fixtures are made once): a single process leaves one of two cores idle
# half the time (subprocesses, windows, video decoding). Pass -n 0 to run in one process.
set -euo pipefail
cd "$(dirname "$0")/.."
workers=$(.venv/bin/python -c 'import os; print(min(len(os.sched_getaffinity(0)), 4))')
parallel=(-n "$workers" --dist loadfile)
if [ -z "${DISPLAY:-}" ] && command -v xvfb-run >/dev/null; then
  exec xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python -m pytest "${parallel[@]}" "$@"
fi
exec .venv/bin/python -m pytest "${parallel[@]}" "$@"
