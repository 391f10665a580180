"""Micro-expression refiner against plain fitting, on clips with a known synthetic micro-expression.

    python benchmarks/bench_microexpr.py                      # all clips (about 10 minutes on 2 cores)
    python benchmarks/bench_microexpr.py --fps 120 --sources still --events lip

No micro-expression dataset can be downloaded here, so the clips are built (tests/microexpr_clips.py):
real fixture frames are resampled to 120 and 200 fps by motion-compensated interpolation (DIS flow
between consecutive source frames), and a known, subtle, local, short deformation is added by
image warping: one lip corner raised (2.6 px,
200 ms), inner brows lowered and drawn together (1.8 px, 300 ms), a nose wrinkle (1.2 px, 120 ms).
"still" clips repeat one frame of single_face.mp4; "talking" clips are a 1-second stretch of
WolfgangLanger_Pexels.mp4 with head motion and a blink. Every clip is written as an H.264 file
(crf 12) and analysed by the real pipeline (observe, fit, then ``--refine``), and so is the same
clip without the deformation (the base).

What a method recovered is the motion of the mesh vertices in the image caused by the non-rigid
part of the reconstruction since the true onset frame (each frame's own head pose and camera for
both terms, so head motion cancels), on the warped clip minus the same on its base clip (so the
natural motion of the talking clips cancels). The truth is the warp's displacement at the base
fit's vertex positions. Per clip and method:

- onset, apex: timing error (ms) of the recovered motion along the true direction, averaged over
  the affected vertices: apex = its maximum, onset = the first frame of the final rise above 20 %
  of it; the same rule on the truth;
- corr: Pearson correlation of recovered and true displacement (x and y, affected vertices, frames
  from 0.1 s before the onset to 0.15 s after the offset); gain: least-squares share of the true
  displacement recovered (1 = all of it);
- false: RMS recovered displacement (px) on vertices the warp does not touch (under 2 % of its
  peak) over the same frames;
- ms/frame: plain = observation + fitting; refiner = the refinement stage alone (flow + training).

The "flow" row is the optical flow as the refiner reads it (its mesh-guided tracks, with the slow
part of their deviation from the fit removed, aggregated to vertices, the fitted head motion
removed), measured the same way: its "false" column is the flow noise the refiner must not pass on. "auto onset" is the refiner's automatic onset minus the true onset (ms;
negative = before it, which is what a neutral reference must be).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.facemodel.loading import ModelChoice, load_face_model  # noqa: E402
from core.fit.params import FitParams  # noqa: E402
from core.microexpr.config import RefineConfig  # noqa: E402
from core.microexpr.correspondence import aggregate_to_vertices  # noqa: E402
from core.microexpr.geometry import apply_offsets, eyeball_vertices, image_points  # noqa: E402
from core.microexpr.results import Refinement  # noqa: E402
from core.microexpr.stage import ClipGeometry, prepare_window  # noqa: E402
from core.observe import FaceObserver  # noqa: E402
from core.pipeline import Pipeline, PipelineConfig  # noqa: E402
from core.take import Take  # noqa: E402
from core.video import open_source  # noqa: E402
from tests.microexpr_clips import (  # noqa: E402
    INNER_BROWS,
    LIP_CORNER,
    NOSE_WRINKLE,
    MicroExpression,
    displacement_field,
    interpolate,
    warp_forward,
    write_video,
)

FIXTURES = ROOT.parent / "shared" / "fixtures"
DURATION_S = 1.0
EVENTS = {"lip": LIP_CORNER, "brows": INNER_BROWS, "nose": NOSE_WRINKLE}
AFFECTED = 0.3  # vertices whose peak true displacement is at least this share of the largest
UNTOUCHED = 0.02  # vertices below this share count for false motion
RISE = 0.2


@dataclass
class Source:
    name: str
    frames: list[np.ndarray]
    fps: float
    landmarks: np.ndarray  # per source frame, 478 x 3 pixels


def observe_frames(frames: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """N x 478 x 3 landmarks (pixels) and N yaw angles (degrees) of consecutive frames."""
    with FaceObserver() as observer:
        observations = [observer.observe(i, i / 30.0, f) for i, f in enumerate(frames)]
    return (np.stack([o.landmarks for o in observations]),
            np.array([o.head_pose.yaw_pitch_roll_deg[0] for o in observations]))


def still_source() -> Source:
    with open_source(FIXTURES / "single_face.mp4") as source:
        frame = source.read(10)
    return Source("still", [frame], 30.0, observe_frames([frame])[0])


def talking_source() -> Source:
    """The 1-second stretch of the talking-head fixture with the most head rotation, a blink (eye
    opening under half its median there) outside the events' time and a quiet mouth during it,
    so that what a method recovers there is the synthetic micro-expression and not speech."""
    with open_source(FIXTURES / "WolfgangLanger_Pexels.mp4") as source:
        fps = source.info.fps
        frames = [image for _, image in source.iter_frames()]
    landmarks, yaw = observe_frames(frames)
    iod = np.linalg.norm(landmarks[:, 33, :2] - landmarks[:, 263, :2], axis=1)
    opening = (np.linalg.norm(landmarks[:, 159, :2] - landmarks[:, 145, :2], axis=1)
               + np.linalg.norm(landmarks[:, 386, :2] - landmarks[:, 374, :2], axis=1)) / iod
    mouth = np.linalg.norm(landmarks[:, 13, :2] - landmarks[:, 14, :2], axis=1) / iod
    n = int(np.ceil(DURATION_S * fps)) + 1
    events = slice(int(0.25 * fps), int(0.75 * fps))
    best, start = -1.0, 0
    for a in range(0, len(frames) - n):
        blink = opening[a:a + n] < 0.5 * np.median(opening[a:a + n])
        if not blink.any() or blink[events].any():
            continue
        score = float(np.ptp(yaw[a:a + n])) / (1 + 10 * float(np.abs(np.diff(mouth[a:a + n][events])).sum()))
        if score > best:
            best, start = score, a
    logging.getLogger("bench").info("talking clip: source frames %d-%d", start, start + n - 1)
    return Source("talking", frames[start:start + n], fps, landmarks[start:start + n])


@dataclass
class Clip:
    name: str
    path: Path
    fps: int
    event: MicroExpression | None
    anchors: np.ndarray  # N x 478 x 3, landmarks of the source frames interpolated to each output frame


def build_clip(source: Source, fps: int, event: MicroExpression | None, folder: Path) -> Clip:
    frames, anchors = interpolate(source.frames, source.landmarks, source.fps, fps, DURATION_S)
    out = []
    for i, frame in enumerate(frames):
        amplitude = float(event.amplitude(i / fps)) if event is not None else 0.0
        out.append(warp_forward(frame, displacement_field(frame.shape[:2], anchors[i], event, amplitude))
                   if amplitude > 0 else frame)
    label = event.name.split()[0] if event is not None else "base"
    path = write_video(folder / f"{source.name}_{fps}_{label}.mp4", out, fps)
    return Clip(f"{source.name} {fps} fps", path, fps, event, anchors)


def analyse(clip: Clip, folder: Path, config: RefineConfig) -> tuple[Take, float, float]:
    """Run the pipeline without, then with the refiner; seconds per frame of each part."""
    take_dir = folder / (clip.path.stem + "_take")
    start = time.perf_counter()
    Pipeline(PipelineConfig(device="cpu")).run(clip.path, take_dir, overwrite=True)
    plain = time.perf_counter() - start
    start = time.perf_counter()
    Pipeline(PipelineConfig(device="cpu", refine=config)).run(clip.path, take_dir)
    refine = time.perf_counter() - start
    take = Take.open(take_dir)
    n = take.manifest.frames_done
    return take, plain / n, refine / n


@torch.no_grad()
def expression_motion(model, params: FitParams, offsets: np.ndarray | None, onset: int) -> np.ndarray:
    """N x V x 2: image motion of the vertices caused by the non-rigid reconstruction since
    ``onset`` (expression and offsets of frame t against those of the onset, both posed and
    projected with frame t's head pose and camera)."""
    rows = np.arange(len(params))
    now = params.to_face_params(rows)
    then = params.to_face_params(np.full(len(rows), onset))
    then.rotation, then.neck, then.jaw, then.eyes = now.rotation, now.neck, now.jaw, now.eyes
    camera = torch.as_tensor(params.camera)
    off = None if offsets is None else torch.as_tensor(offsets)
    off0 = None if offsets is None else off[onset].expand_as(off)
    a = image_points(apply_offsets(model(now), off), camera)
    b = image_points(apply_offsets(model(then), off0), camera)
    return (a - b).numpy()


@torch.no_grad()
def vertex_image(model, params: FitParams) -> np.ndarray:
    rows = np.arange(len(params))
    return image_points(model(params.to_face_params(rows)).vertices, torch.as_tensor(params.camera)).numpy()


def truth_motion(vertices_px: np.ndarray, clip: Clip) -> np.ndarray:
    """N x V x 2 true displacement of the warp at the base fit's vertex positions."""
    out = np.zeros_like(vertices_px)
    times = np.arange(len(vertices_px)) / clip.fps
    for i, t in enumerate(times):
        amplitude = float(clip.event.amplitude(t))
        if amplitude == 0:
            continue
        anchors = clip.anchors[i]
        iod = float(np.linalg.norm(anchors[33, :2] - anchors[263, :2]))
        for bump in clip.event.bumps:
            d2 = ((vertices_px[i] - anchors[bump.landmark, :2]) ** 2).sum(axis=1)
            g = np.exp(-d2 / (2 * (bump.sigma_iod * iod) ** 2))
            out[i] += amplitude * g[:, None] * np.asarray(bump.shift)
    return out


def flow_motion(take: Take, model, config: RefineConfig, onset: int) -> tuple[np.ndarray, np.ndarray]:
    """The refiner's flow targets (WindowData.tracks) aggregated to vertices, minus the fitted head
    motion: N x V x 2 non-rigid motion since ``onset`` and N x V weights (0 where no sample
    reaches)."""
    fit = take.read_fit()
    observations = take.load_observations()
    geometry = ClipGeometry(model, fit, config)
    with open_source(take.manifest.source.path) as source:
        data, _ = prepare_window(geometry, source, observations, 0, len(fit))
    motion = torch.as_tensor(data.tracks - data.tracks[onset])
    weights = torch.as_tensor(data.confidence * data.confidence[onset][None])
    per_vertex, weight = aggregate_to_vertices(motion, data.samples, model.num_vertices, weights)
    rigid = geometry.image_vertices(np.arange(len(fit)), expression_row=onset)[..., :2]
    return per_vertex.numpy() - (rigid - rigid[onset]), weight.numpy()


@dataclass
class Scores:
    onset_ms: float
    apex_ms: float
    corr: float
    gain: float
    false_px: float


def timing(curve: np.ndarray) -> tuple[int, int]:
    apex = int(np.argmax(curve))
    below = np.nonzero(curve[: apex + 1] < RISE * curve[apex])[0]
    return (int(below[-1]) + 1 if len(below) else 0), apex


def score(recovered: np.ndarray, truth: np.ndarray, affected: np.ndarray, untouched: np.ndarray, frames: slice,
          fps: float) -> Scores:
    rec, tru = recovered[frames], truth[frames]
    peak = np.argmax(np.linalg.norm(tru[:, affected], axis=2).mean(axis=1))
    direction = tru[peak, affected] / np.linalg.norm(tru[peak, affected], axis=1, keepdims=True)
    curve = (rec[:, affected] * direction).sum(axis=2).mean(axis=1)
    true_curve = (tru[:, affected] * direction).sum(axis=2).mean(axis=1)
    (o, a), (to, ta) = timing(curve), timing(true_curve)
    x, y = rec[:, affected].ravel(), tru[:, affected].ravel()
    corr = float(np.corrcoef(x, y)[0, 1]) if x.std() > 0 else float("nan")
    gain = float((x * y).sum() / (y * y).sum())
    false = float(np.sqrt((rec[:, untouched] ** 2).sum(axis=2).mean()))
    return Scores(1000 * (o - to) / fps, 1000 * (a - ta) / fps, corr, gain, false)


def evaluate(source: Source, fps: int, event_names: list[str], folder: Path, config: RefineConfig, model) -> list[dict]:
    base_clip = build_clip(source, fps, None, folder)
    base_take, base_plain_t, base_refine_t = analyse(base_clip, folder, config)
    base_fit = base_take.read_fit()
    base_ref = base_take.read_refinement()
    skin = ~eyeball_vertices(model)
    rows = []
    for name in event_names:
        event = EVENTS[name]
        clip = build_clip(source, fps, event, folder)
        take, plain_t, refine_t = analyse(clip, folder, config)
        onset = int(np.floor(event.onset_s * fps))
        fit, ref = take.read_fit(), take.read_refinement()
        truth = truth_motion(vertex_image(model, base_fit), clip)
        peak = np.linalg.norm(truth, axis=2).max(axis=0)
        affected = (peak >= AFFECTED * peak.max()) & skin
        untouched = (peak < UNTOUCHED * peak.max()) & skin
        frames = slice(max(0, onset - int(0.1 * fps)), min(len(fit), int((event.onset_s + event.duration_s + 0.15) * fps)))

        def refined_motion(refinement: Refinement, fit_: FitParams) -> np.ndarray:
            return expression_motion(model, refinement.refined_fit(fit_), refinement.vertex_offsets(np.arange(len(fit_))), onset)

        start = time.perf_counter()
        flow_w, weight_w = flow_motion(take, model, config, onset)
        flow_t = (time.perf_counter() - start) / len(fit)
        flow_b, weight_b = flow_motion(base_take, model, config, onset)
        reached = (weight_w.min(axis=0) > 0) & (weight_b.min(axis=0) > 0)
        methods = {
            "plain fit": (expression_motion(model, fit, None, onset) - expression_motion(model, base_fit, None, onset), plain_t),
            "flow (raw)": (flow_w - flow_b, flow_t),
            "refiner": (refined_motion(ref, fit) - refined_motion(base_ref, base_fit), refine_t),
        }
        auto_onset = 1000 * (int(ref.windows[0][2]) - onset) / fps
        for method, (recovered, seconds) in methods.items():
            keep_a, keep_u = affected, untouched
            if method == "flow (raw)":
                keep_a, keep_u = affected & reached, untouched & reached
            s = score(recovered, truth, keep_a, keep_u, frames, fps)
            rows.append({"clip": clip.name, "event": event.name, "method": method, "scores": s,
                         "ms_per_frame": 1000 * seconds, "auto_onset_ms": auto_onset if method == "refiner" else None})
        logging.getLogger("bench").info("%s %s done", clip.name, event.name)
    return rows


def print_table(rows: list[dict]) -> None:
    header = (f"{'clip':<17}{'micro-expression':<21}{'method':<12}{'onset ms':>9}{'apex ms':>9}{'corr':>7}"
              f"{'gain':>7}{'false px':>10}{'ms/frame':>10}{'auto onset ms':>15}")
    print(header)
    print("-" * len(header))
    for r in rows:
        s = r["scores"]
        auto = f"{r['auto_onset_ms']:+.0f}" if r["auto_onset_ms"] is not None else ""
        print(f"{r['clip']:<17}{r['event']:<21}{r['method']:<12}{s.onset_ms:>+9.0f}{s.apex_ms:>+9.0f}{s.corr:>7.2f}"
              f"{s.gain:>7.2f}{s.false_px:>10.3f}{r['ms_per_frame']:>10.1f}{auto:>15}")
    print("-" * len(header))
    for method in dict.fromkeys(r["method"] for r in rows):
        sel = [r for r in rows if r["method"] == method]
        mean = lambda key: float(np.nanmean([getattr(r["scores"], key) for r in sel]))  # noqa: E731
        mean_abs = lambda key: float(np.nanmean([abs(getattr(r["scores"], key)) for r in sel]))  # noqa: E731
        print(f"{'mean (|timing|)':<38}{method:<12}{mean_abs('onset_ms'):>9.0f}{mean_abs('apex_ms'):>9.0f}"
              f"{mean('corr'):>7.2f}{mean('gain'):>7.2f}{mean('false_px'):>10.3f}"
              f"{np.mean([r['ms_per_frame'] for r in sel]):>10.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fps", type=int, nargs="+", default=[120, 200])
    parser.add_argument("--sources", nargs="+", default=["still", "talking"], choices=["still", "talking"])
    parser.add_argument("--events", nargs="+", default=list(EVENTS), choices=list(EVENTS))
    parser.add_argument("--iterations", type=int, default=RefineConfig().iterations)
    parser.add_argument("--seed", type=int, default=RefineConfig().seed,
                        help="seed of the refiner's training (another seed shows how much the scores vary by chance)")
    parser.add_argument("--keep", type=Path, help="keep the clips and takes in this folder")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    logging.getLogger("bench").setLevel(logging.INFO)
    torch.set_num_threads(1)
    config = RefineConfig(iterations=args.iterations, seed=args.seed)
    model = load_face_model(ModelChoice())
    sources = {"still": still_source, "talking": talking_source}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for name in args.sources:
            source = sources[name]()
            for fps in args.fps:
                rows += evaluate(source, fps, args.events, folder, config, model)
    print(f"\nrefiner: {config.iterations} training steps per window, seed {config.seed}, "
          f"{torch.get_num_threads()} torch thread(s)\n")
    print_table(rows)


if __name__ == "__main__":
    main()
