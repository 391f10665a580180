"""``emocap batch`` on Ray: throughput on 1 worker vs all cores, and Ray's overhead per recording,
in one run.

    python benchmarks/bench_batch.py [--copies N] [--clips single_face.mp4,...] [--workers W]

The batch is N copies of each fixture clip (real copies: every copy is its own recording and take),
analysed as ``emocap batch`` does (open model, no emotion, no exports). Three rows, each on fresh
take folders:

- in-process: the same recordings one after another in this process (core.batch.work.
  process_recording, the function every Ray task runs), no Ray: the baseline;
- ray 1: a local Ray instance with 1 CPU (one worker);
- ray W: a local Ray instance with W CPUs (default: all cores).

Every row runs native libraries on one thread (OMP/MKL/OpenBLAS variables set before torch loads;
Ray sets OMP_NUM_THREADS=1 in its workers), so the scaling is that of recordings run side by side,
not of threads fighting for the same cores. Overhead per recording = (ray 1 - in-process) / N:
starting the worker, importing EmoCap in it, scheduling, progress reports. The local instance's
start (``ray.init``) is shown separately. Speed-up = ray 1 time / ray W time. Before and after the
rows it measures the machine's own parallel speed-up (W copies of a pure-Python loop side by side
vs one): the ceiling of the batch's speed-up on a machine whose cores are shared.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse
import dataclasses
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.batch import cluster
from core.batch.inputs import Recording, find_recordings
from core.batch.runner import BatchRunner
from core.batch.settings import BatchSettings
from core.batch.summary import FINISHED
from core.batch.work import process_recording

FIXTURES = ROOT.parent / "shared" / "fixtures"
SETTINGS = BatchSettings()
SETTINGS = dataclasses.replace(SETTINGS, analysis=dataclasses.replace(SETTINGS.analysis, emotion=False, device="cpu"))


@dataclasses.dataclass(frozen=True)
class Row:
    name: str
    workers: int
    start_s: float
    seconds: float
    frames: int
    cpu_s: float  # CPU time of this process and its descendants (Ray's workers) during the batch
    load: float   # the machine's 1-minute load average at the end (other users' work included)


def tree_cpu_seconds() -> float:
    """User + system CPU seconds of this process and all its live descendants, from /proc."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
    family, frontier = set(), {os.getpid()}
    while frontier:
        family |= frontier
        frontier = {pid for pid, (ppid, _) in stats.items() if ppid in frontier} - family
    return sum(stats[pid][1] for pid in family if pid in stats)


SPIN = "x = 0\nfor i in range(12_000_000):\n    x += i * i\n"


def machine_speedup(workers: int) -> float:
    """How much faster W copies of a pure-Python loop finish side by side than one after another:
    the parallel speed-up this machine gives right now (W on idle, dedicated cores; less when the
    cores are shared with other work or are not real cores)."""
    import subprocess

    def timed(n: int) -> float:
        start = time.perf_counter()
        children = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(n)]
        for child in children:
            child.wait()
        return time.perf_counter() - start

    return workers * timed(1) / timed(workers)


def make_shoot(folder: Path, clips: list[str], copies: int) -> list[Path]:
    paths = []
    for clip in clips:
        source = FIXTURES / clip
        for i in range(copies):
            target = folder / f"{source.stem}_{i:03d}{source.suffix}"
            shutil.copy(source, target)
            paths.append(target)
    return paths


def check(results) -> int:
    bad = [r for r in results if r.status not in FINISHED]
    if bad:
        raise SystemExit(f"{bad[0].name} {bad[0].status}: {bad[0].reason}")
    return sum(r.frames for r in results)


def in_process(recordings: list[Recording]) -> Row:
    import torch

    torch.set_num_threads(1)
    cpu, start = tree_cpu_seconds(), time.perf_counter()
    frames = check([process_recording(r, SETTINGS) for r in recordings])
    return Row("in-process, sequential", 1, 0.0, time.perf_counter() - start, frames, tree_cpu_seconds() - cpu,
               os.getloadavg()[0])


def on_ray(recordings: list[Recording], workers: int) -> Row:
    start = time.perf_counter()
    cluster.start_local(workers)
    started = time.perf_counter() - start
    try:
        cpu, begin = tree_cpu_seconds(), time.perf_counter()
        summary = BatchRunner(SETTINGS, workers).run(recordings)
        seconds = time.perf_counter() - begin
        cpu = tree_cpu_seconds() - cpu  # before the shutdown ends the workers
    finally:
        cluster.shutdown()
    return Row(f"ray, {workers} worker{'s' if workers > 1 else ''}", workers, started, seconds, check(summary.results),
               cpu, os.getloadavg()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=4, help="copies of each clip (default 4)")
    parser.add_argument("--clips", default="single_face.mp4", help="comma list of fixture clips")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="workers of the last row (default: all cores)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_batch_") as tmp:
        tmp = Path(tmp)
        (tmp / "shoot").mkdir()
        sources = make_shoot(tmp / "shoot", args.clips.split(","), args.copies)
        n = len(sources)

        def fresh(tag: str) -> list[Recording]:
            return find_recordings(sources, tmp / tag)[0]

        process_recording(find_recordings([sources[0]], tmp / "warm")[0][0], SETTINGS)  # imports, model loads
        before = machine_speedup(args.workers)
        rows = [in_process(fresh("inproc")), on_ray(fresh("ray1"), 1), on_ray(fresh(f"ray{args.workers}"), args.workers)]
        after = machine_speedup(args.workers)
    base, one = rows[0], rows[1]
    sys.stdout.write(f"{n} recordings ({args.copies} x {args.clips}), {rows[0].frames} frames; "
                     f"{os.cpu_count()} cores; one thread per worker\n\n")
    sys.stdout.write(f"{'run':<24} {'ray.init s':>10} {'batch s':>8} {'frames/s':>9} {'speed-up':>9} "
                     f"{'overhead/rec s':>15} {'CPU s':>7} {'cores used':>10} {'load':>5}\n")
    for row in rows:
        ray_row = row.name.startswith("ray")
        speed = f"{one.seconds / row.seconds:.2f}x" if ray_row else "-"
        overhead = f"{(row.seconds - base.seconds) / n:.2f}" if row.workers == 1 and ray_row else "-"
        sys.stdout.write(f"{row.name:<24} {row.start_s:>10.1f} {row.seconds:>8.1f} {row.frames / row.seconds:>9.1f} "
                         f"{speed:>9} {overhead:>15} {row.cpu_s:>7.1f} {row.cpu_s / row.seconds:>10.2f} {row.load:>5.1f}\n")
    sys.stdout.write("\nspeed-up: against ray with 1 worker. overhead per recording: (ray 1 worker - in-process) / "
                     "recordings: worker start and imports, scheduling, progress reports. cores used: CPU s / batch s "
                     "(this process and Ray's processes); load: the machine's 1-minute load average after the row "
                     "(other users' work included): with W workers the speed-up is bounded by the cores the batch got\n")
    sys.stdout.write(f"\nthe machine's own parallel speed-up with {args.workers} processes (a pure-Python loop, "
                     f"{args.workers} side by side vs 1): {before:.2f}x before the rows, {after:.2f}x after\n")


if __name__ == "__main__":
    main()
