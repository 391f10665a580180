#!/usr/bin/env bash
# The GPU check: the tests that need a CUDA GPU, then every torch stage timed on the GPU and on the
# CPU (benchmarks/bench_devices.py) into one report, in under 5 minutes (after any install).
#   bash scripts/device_check.sh [OUT_DIR]        (default build/device-report)
# Writes OUT_DIR/device_report.json and OUT_DIR/device_report.md. Python: $EMOCAP_PYTHON when set,
# else .venv/bin/python, made by `scripts/setup.sh --test` when it does not exist (that needs the
# network). Without a GPU it says so, skips the GPU tests and still writes the CPU report (exit 0).
# Exit status 1 when a test or a benchmark stage failed or ran out of time.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-build/device-report}"
python="${EMOCAP_PYTHON:-.venv/bin/python}"
if [ ! -x "$python" ]; then
  if [ -n "${EMOCAP_PYTHON:-}" ]; then
    echo "EMOCAP_PYTHON=$python is not an executable Python" >&2
    exit 2
  fi
  echo "== no .venv: installing with scripts/setup.sh --test"
  bash scripts/setup.sh --test
fi
SECONDS=0  # the 5 minutes count from here
status=0

limited() {  # limited SECONDS COMMAND...: run it under timeout, saying so when it ran out of time
  local limit=$1 rc=0
  shift
  timeout "$limit" "$@" || rc=$?
  if [ "$rc" -eq 124 ]; then echo "!! stopped after $limit s: $*"; fi
  return "$rc"
}

echo "== GPU"
if command -v nvidia-smi >/dev/null; then nvidia-smi || true; else echo "nvidia-smi not found"; fi
gpu=$("$python" -c 'import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")')
if [ -n "$gpu" ]; then
  echo "== GPU tests on $gpu"
  limited 75 "$python" -m pytest -q -rs tests/core/test_device.py tests/core/test_device_report.py \
    tests/core/test_emotion_recognisers.py::test_gpu_scores_match_cpu_scores || status=1
else
  echo "== no CUDA GPU here ($("$python" -c 'import torch; print("torch", torch.__version__, "CUDA build", torch.version.cuda)')):" \
    "GPU tests skipped, the benchmark times the CPU only"
fi

echo "== benchmark: every torch stage on each device"
limited $((285 - SECONDS)) "$python" benchmarks/bench_devices.py --out "$out" || status=1
exit "$status"
