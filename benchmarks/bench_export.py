"""Export speed and size of every registered format, in one table.

    python benchmarks/bench_export.py [--take TAKE] [--repeats 3]

Analyses ``../shared/fixtures/WolfgangLanger_Pexels.mp4`` (472 frames, 23.976 fps) once into a
temporary take with ``emocap analyze`` (or uses ``--take``), then exports the whole take in every
format. Columns: seconds per 1000 frames (best of ``--repeats``, wall clock, the whole export:
loading the fit, posing, writing; FBX includes starting Blender in its subprocess), file size per
1000 frames (MB, a folder's files summed), and both relative to curves_npz, the in-run reference
(the cheapest complete export: the fit's own numbers).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.export import export, formats  # noqa: E402

FIXTURE = ROOT.parent / "shared" / "fixtures" / "WolfgangLanger_Pexels.mp4"
SUFFIX = {"curves_npz": "npz", "curves_json": "json", "curves_csv": "csv", "arkit_csv": "csv", "fbx": "fbx",
          "gltf": "glb", "usd": "usdc", "abc": "abc", "obj_seq": ""}
REFERENCE = "curves_npz"


def analyse(out: Path) -> Path:
    emocap = Path(sys.executable).with_name("emocap")
    cmd = [str(emocap), "analyze", str(FIXTURE), "--out", str(out), "--device", "cpu"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=dict(os.environ, OMP_NUM_THREADS="1"))
    return out


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*")) if path.is_dir() else path.stat().st_size


def measure(take: Path, fmt: str, folder: Path, repeats: int) -> tuple[float, int, int]:
    """(best seconds, bytes, frames) of exporting the whole take as ``fmt``."""
    out = folder / (f"{fmt}.{SUFFIX[fmt]}" if SUFFIX.get(fmt, "x") else fmt)
    best = float("inf")
    for _ in range(repeats):
        if out.is_dir():
            shutil.rmtree(out)
        t0 = time.perf_counter()
        result = export(take, fmt, out)
        best = min(best, time.perf_counter() - t0)
    return best, size(out), result.frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--take", type=Path, help="an analysed take (default: analyse the fixture once)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="emocap_bench_export_") as tmp:
        tmp = Path(tmp)
        take = args.take or analyse(tmp / "take")
        rows = {fmt: measure(take, fmt, tmp, args.repeats) for fmt in formats()}
    ref_s, ref_b, _ = rows[REFERENCE]
    frames = rows[REFERENCE][2]
    print(f"export of {frames} frames ({take.name}), best of {args.repeats}; reference {REFERENCE}")
    print(f"{'format':<12} {'s / 1000 frames':>16} {'x ref':>8} {'MB / 1000 frames':>17} {'x ref':>8}")
    for fmt, (sec, nbytes, n) in rows.items():
        s_k, mb_k = sec * 1000 / n, nbytes / 1e6 * 1000 / n
        print(f"{fmt:<12} {s_k:>16.3f} {sec / ref_s:>8.1f} {mb_k:>17.3f} {nbytes / ref_b:>8.1f}")


if __name__ == "__main__":
    main()
