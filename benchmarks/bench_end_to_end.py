"""Whole commands, wall time from start-up to exit, a reference commit against this tree, in one run.

    python benchmarks/bench_end_to_end.py [--reference REF] [--rows analyze,fer,both,refine,refine-4s,refine-12s,fer-4x,fer-12x] [--repeat N]

Each row runs ``python -m core.cli analyze ...`` on a fresh take, once from a git worktree of REF
(default: the commit before issue 18's speed work, see REFERENCE) and once from this tree, with the
same interpreter and installed packages, alternating so that a busy machine slows both alike. It
prints seconds, frames per second, the speed-up and each process's peak memory (its maximum
resident set, from the kernel's rusage). Rows:

- analyze: observe + fit (``--no-emotion``) on the Wolfgang fixture (472 frames, 640x360);
- fer: ``--recognisers fer`` (the default emotion);
- both: ``--recognisers both --accept-emonet-licence`` (skipped when EmoNet is not installed);
- refine: ``--no-emotion --refine`` on a 180-frame 120 fps clip made from the Wolfgang frames (one
  refinement window);
- refine-4s: the same on 480 frames (4 s at 120 fps: three windows of 2 s);
- refine-12s: the same on 1 440 frames (12 s at 120 fps): how the refiner's peak memory grows with
  a clip's length (printed per frame against refine-4s when that ran too);
  each refine row also runs ``--no-emotion`` alone on its clip and prints the refiner's own time
  per frame: (with ``--refine`` minus without) / frames, fastest of each;
- fer-4x, fer-12x: ``--recognisers fer`` on the Wolfgang clip played forwards and backwards in turn,
  4 and 12 times (1 888 and 5 664 frames): how peak memory grows with a clip's length (printed per
  frame against the fer row when that ran too).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FIXTURES = ROOT.parent / "shared" / "fixtures"
WOLFGANG = FIXTURES / "WolfgangLanger_Pexels.mp4"
REFERENCE = "e8167bd"  # main before the speed work of issue 18
ROWS = {
    "analyze": ["--no-emotion"],
    "fer": ["--recognisers", "fer"],
    "both": ["--recognisers", "both", "--accept-emonet-licence"],
    "refine": ["--no-emotion", "--refine"],
    "refine-4s": ["--no-emotion", "--refine"],
    "refine-12s": ["--no-emotion", "--refine"],
    "fer-4x": ["--recognisers", "fer"],
    "fer-12x": ["--recognisers", "fer"],
}
HIGH_RATE_SECONDS = {"refine": 1.5, "refine-4s": 4.0, "refine-12s": 12.0}
LOOPS = {"fer-4x": 4, "fer-12x": 12}
GROWTH = [("fer", "fer-4x"), ("fer", "fer-12x"), ("refine-4s", "refine-12s")]  # (shorter, longer clip)


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_mb: float


def run_analyze(tree: Path, clip: Path, out: Path, options: list[str]) -> Run:
    """One ``emocap analyze`` from ``tree`` (its own code, this interpreter)."""
    command = [sys.executable, "-m", "core.cli", "analyze", str(clip), "--out", str(out), *options]
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed in {tree}:\n{process.stderr.read()[-2000:]}")
    return Run(seconds, usage.ru_maxrss / 1024)


def frame_count(clip: Path) -> int:
    from core.video import open_source

    with open_source(clip) as source:
        return source.info.frame_count


def high_rate_clip(folder: Path, seconds: float) -> Path:
    """``seconds`` at 120 fps from the start of the Wolfgang fixture (frames repeated as needed)."""
    from core.video import open_source
    from tests.microexpr_clips import resample, write_video

    with open_source(WOLFGANG) as source:
        fps = source.info.fps
        frames = [source.read(i) for i in range(int(fps * seconds) + 1)]
    resampled, _ = resample(frames, fps, 120.0, seconds)
    count = int(round(120 * seconds))
    return write_video(folder / f"wolfgang_120fps_{count}.mp4", resampled[:count], 120)


def looped_clip(folder: Path, times: int) -> Path:
    """The Wolfgang fixture played forwards, backwards, forwards ... ``times`` times in all (24 fps)."""
    from core.video import open_source
    from tests.microexpr_clips import write_video

    with open_source(WOLFGANG) as source:
        frames = [image for _, image in source.iter_frames()]
    played = [image for k in range(times) for image in (frames if k % 2 == 0 else frames[::-1])]
    return write_video(folder / f"wolfgang_{times}x.mp4", played, 24, crf=18)


def emonet_installed() -> bool:
    from core.emotion import store
    from core.errors import EmoCapError

    try:
        store.model_path("emonet")
    except EmoCapError:
        return False
    return True


def growth_kb(short_frames: int, short: Run, long_frames: int, long: Run) -> float:
    """Peak memory added per frame (KB) from a run on the shorter clip to one on the longer."""
    return (long.peak_mb - short.peak_mb) * 1024 / (long_frames - short_frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", default=REFERENCE, help="git commit to compare against")
    parser.add_argument("--rows", default=",".join(ROWS), help="comma-separated: " + ", ".join(ROWS))
    parser.add_argument("--repeat", type=int, default=1, help="runs per row and tree (the fastest counts)")
    args = parser.parse_args()
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    if "both" in rows and not emonet_installed():
        print("EmoNet is not installed ('emocap models install emonet --accept-licence'): row 'both' skipped")
        rows.remove("both")
    with tempfile.TemporaryDirectory(prefix="emocap-e2e-") as tmp:
        tmp_path = Path(tmp)
        reference = tmp_path / "reference"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(reference), args.reference],
                       check=True)
        try:
            clips = {row: high_rate_clip(tmp_path, seconds) for row, seconds in HIGH_RATE_SECONDS.items() if row in rows}
            clips |= {row: looped_clip(tmp_path, times) for row, times in LOOPS.items() if row in rows}
            print(f"reference {args.reference} ({reference}) vs this tree ({ROOT}); "
                  f"fastest of {args.repeat}; {os.cpu_count()} CPUs")
            print(f"{'command':40s} {'frames':>6s} {'ref s':>7s} {'ref fps':>8s} {'new s':>7s} {'new fps':>8s} "
                  f"{'speed-up':>8s} {'ref MB':>7s} {'new MB':>7s}")
            peaks: dict[str, tuple[int, dict[str, Run]]] = {}  # row -> (frames, its "ref" and "new" runs)
            for row in rows:
                clip = clips.get(row, WOLFGANG)
                frames = frame_count(clip)
                best, plain = {}, {}
                for k in range(args.repeat):
                    for name, tree in (("ref", reference), ("new", ROOT)):
                        run = run_analyze(tree, clip, tmp_path / f"{row}-{name}-{k}", ROWS[row])
                        if name not in best or run.seconds < best[name].seconds:
                            best[name] = run
                        if row in HIGH_RATE_SECONDS:  # the same clip without the refiner
                            run = run_analyze(tree, clip, tmp_path / f"{row}-{name}-{k}-plain", ROWS["analyze"])
                            if name not in plain or run.seconds < plain[name].seconds:
                                plain[name] = run
                ref, new = best["ref"], best["new"]
                label = f"analyze {' '.join(ROWS[row])}" + (f" ({HIGH_RATE_SECONDS[row]:g} s)" if row in HIGH_RATE_SECONDS else "")
                print(f"{label[:40]:40s} {frames:6d} {ref.seconds:7.1f} {frames / ref.seconds:8.1f} {new.seconds:7.1f} "
                      f"{frames / new.seconds:8.1f} {ref.seconds / new.seconds:7.2f}x {ref.peak_mb:7.0f} {new.peak_mb:7.0f}",
                      flush=True)
                peaks[row] = (frames, best)
                if plain:
                    alone = {name: 1000 * (best[name].seconds - plain[name].seconds) / frames for name in best}
                    print(f"{'  refiner alone, ms a frame':40s} {'':6s} {alone['ref']:7.1f} {'':8s} {alone['new']:7.1f} "
                          f"{'':8s} {alone['ref'] / alone['new']:7.2f}x   (without --refine: {plain['ref'].seconds:.1f} "
                          f"and {plain['new'].seconds:.1f} s)", flush=True)
            for shorter, longer in GROWTH:
                if shorter in peaks and longer in peaks:
                    (short_frames, short), (long_frames, long) = peaks[shorter], peaks[longer]
                    print(f"peak memory growth {shorter} -> {longer}: " + ", ".join(
                        f"{name} {growth_kb(short_frames, short[name], long_frames, long[name]):.1f} KB a frame"
                        for name in ("ref", "new")))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(reference)], check=False)


if __name__ == "__main__":
    main()
