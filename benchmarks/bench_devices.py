"""Every stage that runs torch, timed on the CPU and on the first CUDA GPU when there is one, in one table.

    python benchmarks/bench_devices.py [--quick] [--out DIR]

The Wolfgang fixture is observed and fitted once on the CPU into a temporary take; every stage then
runs a short fixed workload on it through the project's own code (benchmarks/devices/workloads.py):
the fit (identity + windows), the FER and EmoNet recognisers, the encoder runtime, the
micro-expression refiner's training on one window, and one epoch of train-actor's training.
Columns: seconds of wall time, items per second, and the speed-up of the GPU over the CPU. A stage
whose code takes no device, a GPU row on a machine without one and a recogniser whose weights are
not installed are reported as skipped, with the reason. --quick analyses the first 60 frames and
shrinks every workload to a few seconds in all (for the tests). --out DIR writes
DIR/device_report.json and DIR/device_report.md. Exit status 1 when a stage failed.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.devices.clip import AnalysedClip, analyse_clip  # noqa: E402
from benchmarks.devices.report import Row, add_speedups, text_table, write_report  # noqa: E402
from benchmarks.devices.workloads import FULL, QUICK, STAGES, Sizes, Skipped, Stage  # noqa: E402

log = logging.getLogger("bench_devices")

GPU = "cuda:0"


def run_stage(stage: Stage, clip: AnalysedClip, device: str, sizes: Sizes) -> Row:
    """The stage's row on ``device`` (skipped or failed rows say why)."""
    row = Row(stage.name, device)
    if device != "cpu" and stage.cpu_only:
        row.skipped = f"CPU only: {stage.cpu_only}"
        return row
    if device != "cpu" and not torch.cuda.is_available():
        row.skipped = "no CUDA GPU here (torch.cuda.is_available() is false)"
        return row
    try:
        if device != "cpu":  # warm-up: CUDA context, kernel loading, cuDNN's algorithm search
            stage.measure(clip, device, sizes)
        measured = stage.measure(clip, device, sizes)
    except Skipped as skipped:
        row.skipped = str(skipped)
        return row
    except Exception as err:  # reported in the table, and in the exit status
        log.exception("%s on %s failed", stage.name, device)
        row.error = f"{type(err).__name__}: {err}"
        return row
    row.workload, row.items, row.unit, row.seconds = measured.workload, measured.items, measured.unit, measured.seconds
    row.items_per_s = measured.items / measured.seconds
    return row


def git_commit() -> str:
    """This tree's commit (with "+changes" when the work tree differs from it)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def machine(quick: bool, setup_s: float, total_s: float, load: float) -> dict:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "commit": git_commit(),
        "mode": "quick" if quick else "full", "python": platform.python_version(), "torch": torch.__version__,
        "cuda": torch.version.cuda, "gpu": gpu or "none (torch.cuda.is_available() is false)",
        "cpu_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "load_average_at_start": round(load, 2),
        "setup_seconds (observe + fit the clip, CPU)": round(setup_s, 1), "total_seconds": round(total_s, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny workloads (a few seconds in all)")
    parser.add_argument("--out", type=Path, help="folder for device_report.json and device_report.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    sizes = QUICK if args.quick else FULL
    load = os.getloadavg()[0]
    began = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="emocap-bench-devices-") as tmp:
        clip = analyse_clip(Path(tmp), sizes.clip_frames)
        setup_s = time.perf_counter() - began
        for stage in STAGES:
            for device in ("cpu", GPU):
                rows.append(run_stage(stage, clip, device, sizes))
                print(f"{stage.name} on {device}: {'failed' if rows[-1].error else 'skipped' if rows[-1].skipped else 'done'}", file=sys.stderr, flush=True)
    add_speedups(rows)
    about = machine(args.quick, setup_s, time.perf_counter() - began, load)
    print(", ".join(f"{k} {v}" for k, v in about.items()))
    print(text_table(rows))
    if args.out is not None:
        for path in write_report(args.out, rows, about):
            print(f"wrote {path}")
    return 1 if any(r.error for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
