"""benchmarks/bench_devices.py --quick: every torch stage has a CPU row and a GPU row in the JSON
report; CPU rows are timed, and GPU rows are timed only where a GPU exists and the stage takes a
device (skipped with a reason otherwise)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

from benchmarks.devices.workloads import STAGES
from core.emotion import store
from core.errors import EmoCapError

ROOT = Path(__file__).resolve().parents[2]


def installed(name: str) -> bool:
    try:
        store.model_path(name)
    except EmoCapError:
        return False
    return True


def test_quick_report_has_every_stage_on_both_devices(tmp_path, wolfgang):
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_devices.py"), "--quick", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    report = json.loads((tmp_path / "device_report.json").read_text())
    rows = {(r["stage"], r["device"]): r for r in report["rows"]}
    assert sorted(rows) == sorted((s.name, d) for s in STAGES for d in ("cpu", "cuda:0"))
    assert "| stage | device |" in (tmp_path / "device_report.md").read_text()
    gpu = torch.cuda.is_available()
    for stage in STAGES:
        cpu, cuda = rows[stage.name, "cpu"], rows[stage.name, "cuda:0"]
        assert cpu["error"] is None and cuda["error"] is None
        weights = stage.name.removeprefix("emotion ")
        if stage.name.startswith("emotion ") and not installed(weights):
            assert cpu["seconds"] is None and "not installed" in cpu["skipped"]
            continue
        assert cpu["skipped"] is None and cpu["seconds"] > 0 and cpu["items"] > 0 and cpu["items_per_s"] > 0
        if gpu and stage.cpu_only is None:
            assert cuda["seconds"] > 0 and cuda["speedup"] > 0
        else:
            assert cuda["seconds"] is None and cuda["speedup"] is None and cuda["skipped"]
