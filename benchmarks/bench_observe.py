"""Speed and memory of decoding, face observation and the whole analysis, against bare MediaPipe.

    python benchmarks/bench_observe.py [--clip PATH] [--memory] [--memory-frames 20000]

Prints one table. The reference row is MediaPipe's face mesh alone (OpenCV decode + FaceMesh on the
full frame, tracking mode, refined landmarks), measured in the same run on the same clip. With
--memory, the peak resident memory of `emocap analyze` on the clip and on a long clip made by
concatenating it (no re-encoding) is measured in child processes.
"""

from __future__ import annotations

import argparse
import logging
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.observe import FaceObserver  # noqa: E402
from core.observe.mediapipe_runtime import QuietSolution, import_mediapipe  # noqa: E402
from core.pipeline import Pipeline, PipelineConfig  # noqa: E402
from core.video import open_source  # noqa: E402

DEFAULT_CLIP = ROOT.parent / "shared" / "fixtures" / "WolfgangLanger_Pexels.mp4"


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def decode_emocap(clip: Path) -> int:
    with open_source(clip) as source:
        return sum(1 for _ in source.iter_frames())


def decode_opencv(clip: Path) -> int:
    cap = cv2.VideoCapture(str(clip))
    n = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            return n
        cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        n += 1


def mediapipe_reference(clip: Path) -> tuple[int, int]:
    mp = import_mediapipe()
    mesh = QuietSolution(lambda: mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=True))
    cap = cv2.VideoCapture(str(clip))
    n = found = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            return n, found
        found += mesh.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)).multi_face_landmarks is not None
        n += 1


def observe_only(frames) -> int:
    with FaceObserver() as observer:
        return sum(observer.observe(i, 0.0, f).has_face for i, f in enumerate(frames))


def concatenate(clip: Path, out: Path, frames: int) -> int:
    """Write ``clip`` repeated until ``frames`` frames, by remuxing its packets (no re-encoding)."""
    import av

    with av.open(str(clip)) as src, av.open(str(out), "w") as dst:
        stream = src.streams.video[0]
        out_stream = dst.add_stream_from_template(stream)
        packets = [(p.pts, p.dts, bytes(p), p.is_keyframe) for p in src.demux(stream) if p.size]
        first = min(p[0] for p in packets)
        span = max(p[0] for p in packets) - first + (packets[1][0] - packets[0][0] if len(packets) > 1 else 1)
        written = 0
        while written < frames:
            offset = (written // len(packets)) * span
            for pts, dts, data, key in packets:
                packet = av.Packet(data)
                packet.pts, packet.dts = pts + offset, dts + offset
                packet.is_keyframe = key
                packet.time_base = stream.time_base
                packet.stream = out_stream
                dst.mux(packet)
                written += 1
                if written >= frames:
                    break
    return written


def peak_rss_of_analysis(clip: Path, workdir: Path) -> tuple[float, float]:
    """(peak resident MiB, seconds) of `emocap analyze clip` in a fresh process."""
    code = (
        "import resource, sys; from core.cli import main; rc = main(sys.argv[1:]); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(rc)"
    )
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", code, "analyze", str(clip), "--out", str(workdir / clip.stem), "--device", "cpu", "--overwrite"],
        cwd=ROOT, capture_output=True, text=True,
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"analysis of {clip} failed: {result.stderr.strip().splitlines()[-1]}")
    return int(result.stderr.strip().splitlines()[-1]) / 1024, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    parser.add_argument("--memory", action="store_true", help="also measure peak memory on a long clip")
    parser.add_argument("--memory-frames", type=int, default=20000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    with open_source(args.clip) as source:
        info = source.info
        frames = [image for _, image in source.iter_frames()]
    n = len(frames)
    rows = []
    t = timed(lambda: decode_opencv(args.clip))
    rows.append(("decode, OpenCV (reference)", n / t, 1000 * t / n, ""))
    t = timed(lambda: decode_emocap(args.clip))
    rows.append(("decode, core.video", n / t, 1000 * t / n, ""))
    found = [0]
    t_ref = timed(lambda: found.__setitem__(0, mediapipe_reference(args.clip)[1]))
    ref_fps = n / t_ref
    rows.append(("MediaPipe face mesh alone (reference)", ref_fps, 1000 * t_ref / n, f"faces {found[0]}/{n}"))
    t = timed(lambda: found.__setitem__(0, observe_only(frames)))
    rows.append(("observation (decoded frames)", n / t, 1000 * t / n, f"faces {found[0]}/{n}"))
    with tempfile.TemporaryDirectory() as tmp:
        summary = [None]
        observe_only_pipeline = Pipeline(PipelineConfig(device="cpu", model=None))
        t = timed(lambda: summary.__setitem__(0, observe_only_pipeline.run(args.clip, Path(tmp) / "take")))
        e2e_fps = n / t
        rows.append(("end to end: decode + observe + take", e2e_fps, 1000 * t / n,
                     f"faces {summary[0].frames_with_face}/{n}, {ref_fps / e2e_fps:.2f}x the reference's time"))
        t = timed(lambda: Pipeline(PipelineConfig(device="cpu")).run(args.clip, Path(tmp) / "take_fit"))
        rows.append(("end to end with open-model fitting", n / t, 1000 * t / n, "analyze's default"))
        if args.memory:
            long_clip = Path(tmp) / f"long_{args.memory_frames}.mp4"
            concatenate(args.clip, long_clip, args.memory_frames)
            short_mib, _ = peak_rss_of_analysis(args.clip, Path(tmp))
            long_mib, long_s = peak_rss_of_analysis(long_clip, Path(tmp))
            rows.append((f"peak memory, {n} frames", float("nan"), float("nan"), f"{short_mib:.0f} MiB"))
            rows.append((f"peak memory, {args.memory_frames} frames", args.memory_frames / long_s,
                         1000 * long_s / args.memory_frames, f"{long_mib:.0f} MiB (fps incl. start-up)"))

    print(f"\nclip: {args.clip.name}, {info.width}x{info.height}, {info.fps:.3f} fps, {n} frames; "
          f"{sys.platform}, {resource.getpagesize()} B pages\n")
    print(f"{'stage':42s} {'frames/s':>9s} {'ms/frame':>9s}  notes")
    print("-" * 100)
    for name, fps, ms, note in rows:
        fps_s = f"{fps:9.1f}" if fps == fps else f"{'':9s}"
        ms_s = f"{ms:9.2f}" if ms == ms else f"{'':9s}"
        print(f"{name:42s} {fps_s} {ms_s}  {note}")
    print("\ntargets: observation end to end >= 150 frames/s and within 2x of the reference; peak memory < 1.5 GB on 20 000 frames")


if __name__ == "__main__":
    main()
