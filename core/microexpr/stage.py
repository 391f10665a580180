"""The micro-expression stage of an analysis: windows, flow tracks, onsets, refinement, assembly.

For every run of frames with a face, overlapping windows of ``window_s`` seconds are refined
independently (so an interrupted stage resumes window by window with identical results):

1. flow samples: barycentric points on the skin triangles that face the camera and are not hidden
   in the window's middle frame (the reference), placed by the fit (region-based pixel-vertex
   correspondence, core/microexpr/correspondence.py);
2. tracks: DIS optical flow from the reference to every frame of the window on a face canvas,
   guided by the fitted mesh (each frame warped back along the fit, the flow measuring only what
   the fit misses; core/microexpr/flow.py); a sample's confidence drops where its triangle turns
   away;
3. what the fit does not explain (tracked minus fitted positions, and the same for the detected
   landmarks) loses its running median over ``detrend_s`` seconds: a micro-expression is brief,
   while slow drifts come from the flow's long reach and the fit's smoothing;
4. onset: the user's frame, or a low-motion frame before the strongest brief movement the fit does
   not explain (core/microexpr/motion.py), where the expression update starts from zero; the
   motion energy of each frame is the size of that brief movement;
5. refinement: the DEM and DGMD trained on the window (core/microexpr/refiner.py).

Windows are cross-faded where they overlap, and the per-vertex offsets of the clip are stored as a
small linear basis with per-frame coefficients (core/microexpr/results.py).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, fields
from typing import Protocol

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d

from core.errors import CancelledError
from core.facemodel.model import FaceModel
from core.fit.camera import project
from core.fit.fitter import interocular, single_threaded_torch, torch_threads
from core.fit.params import FitParams
from core.fit.temporal import segments
from core.memory import release_freed_memory
from core.microexpr.config import RefineConfig
from core.microexpr.correspondence import MeshRegions, front_facing, mesh_regions, sample_set, visible_samples
from core.microexpr.flow import face_canvas, mesh_warp, to_gray, track_window
from core.microexpr.geometry import skin_triangles
from core.microexpr.motion import find_onset, motion_energy, motion_speed
from core.microexpr.refiner import MicroExpressionRefiner, WindowData, WindowRefinement, train_window
from core.microexpr.results import Refinement, streamed_offsets_basis
from core.prefetch import map_ahead
from core.results import StageProgress
from core.take.observations import ObservationArrays
from core.video import FrameSource

log = logging.getLogger(__name__)

FLOW_STEP, REFINE_STEP = "micro-expression flow", "micro-expression refinement"
REFERENCE_MIN_COSINE = 0.2  # triangles more oblique than this in the reference frame are not sampled
FRAME_MIN_COSINE = 0.05  # a sample's confidence is 0 in frames where its triangle is this oblique
MAX_SAMPLES = 4000
SPEED_LAG_S = 0.02


@dataclass(frozen=True)
class WindowResult:
    """A refined window of rows [start, stop) of the take: onset row, motion_energy (T, pixels),
    expression T x E, rotation T x 3, camera T x 4, offsets T x V x 3 (metres), final_losses
    (name -> last value of the training)."""

    start: int
    stop: int
    onset: int
    motion_energy: np.ndarray
    expression: np.ndarray
    rotation: np.ndarray
    camera: np.ndarray
    offsets: np.ndarray
    final_losses: dict[str, float]

    def to_npz_dict(self) -> dict[str, np.ndarray]:
        arrays = {f.name: np.asarray(getattr(self, f.name)) for f in fields(self) if f.name != "final_losses"}
        arrays["offsets"] = arrays["offsets"].astype(np.float32)
        names = sorted(self.final_losses)
        return arrays | {"loss_names": np.array(names), "loss_values": np.array([self.final_losses[n] for n in names])}

    @classmethod
    def from_npz_dict(cls, data) -> WindowResult:
        losses = dict(zip(data["loss_names"].tolist(), data["loss_values"].tolist()))
        scalars = {k: int(data[k]) for k in ("start", "stop", "onset")}
        arrays = {k: np.asarray(data[k]) for k in ("motion_energy", "expression", "rotation", "camera", "offsets")}
        return cls(**scalars, **arrays, final_losses=losses)


def plan_windows(has_face: np.ndarray, fps: float, window_s: float, overlap_s: float) -> list[tuple[int, int]]:
    """(start, stop) rows of equal overlapping windows covering every run of frames with a face;
    runs shorter than 3 frames are skipped."""
    length = max(3, int(round(window_s * fps)))
    overlap = min(max(0, int(round(overlap_s * fps))), length // 2)
    windows = []
    for a, b in segments(has_face):
        n = b - a
        if n < 3:
            continue
        if n <= length:
            windows.append((a, b))
            continue
        count = int(np.ceil((n - overlap) / (length - overlap)))
        step = (n - overlap) / count
        windows += [(a + int(round(i * step)), a + int(round((i + 1) * step + overlap))) for i in range(count)]
        windows[-1] = (windows[-1][0], b)
    return windows


class ClipGeometry:
    """The model, its regions and the fit of the clip as tensors, for window preparation."""

    def __init__(self, model: FaceModel, fit: FitParams, config: RefineConfig) -> None:
        self.model = model
        self.fit = fit
        self.config = config
        self.regions = self.regions_of(model, config)
        self.skin = skin_triangles(model)
        self.faces = model.faces.numpy()

    @staticmethod
    def regions_of(model: FaceModel, config: RefineConfig) -> MeshRegions:
        """The mesh regions of the model (from its template; the same for every clip)."""
        return mesh_regions(model.template.numpy(), model.faces.numpy(), config.num_regions)

    @torch.no_grad()
    def image_vertices(self, rows: np.ndarray, expression_row: int | None = None) -> np.ndarray:
        """B x V x 3 image-space vertices of the fit at ``rows`` (with the expression of
        ``expression_row`` when given)."""
        params = self.fit.to_face_params(rows)
        if expression_row is not None:
            params.expression = torch.as_tensor(self.fit.expression[[expression_row] * len(rows)])
        camera = torch.as_tensor(self.fit.camera[rows])
        return project(self.model(params).vertices, camera).numpy()


def prepare_window(geometry: ClipGeometry, source: FrameSource, observations: ObservationArrays, start: int,
                   stop: int, cancel: threading.Event | None = None,
                   progress: Callable[[int], None] | None = None) -> tuple[WindowData, np.ndarray]:
    """Flow samples, tracks and onset of the window of rows [start, stop) -> (WindowData, motion
    energy T in pixels). ``progress`` is called with 1 after each tracked frame."""
    config, fit, model = geometry.config, geometry.fit, geometry.model
    rows = np.arange(start, stop)
    landmarks = observations.landmarks[rows][..., :2]
    iod = float(np.median(interocular(observations.landmarks[rows])))
    images = geometry.image_vertices(rows)  # T x V x 3
    reference = len(rows) // 2  # the middle frame: tracks reach at most half a window, away from fit start-up
    facing = np.nonzero(front_facing(images[reference][None], geometry.faces, REFERENCE_MIN_COSINE)[0])[0]
    triangles = np.intersect1d(facing, geometry.skin)
    samples = sample_set(geometry.faces, geometry.regions, triangles, config.samples_per_triangle, MAX_SAMPLES)
    canvas = face_canvas(landmarks, iod, config.flow_iod_px, config.max_canvas_px)
    on_canvas = np.concatenate([canvas.to_canvas(images[reference, :, :2]), images[reference, :, 2:] * canvas.scale], axis=1)
    samples = samples.subset(visible_samples(samples, on_canvas, canvas.size))
    points = samples.points(images[reference][None, :, :2])[0]

    frame_index = fit.frame_index[rows]
    fps = 1.0 / max(float(np.median(np.diff(observations.timestamp[rows]))), 1e-6) if len(rows) > 1 else 30.0
    canvas_frames = []
    for i, (_, image) in enumerate(source.iter_frames(int(frame_index[0]), int(frame_index[-1]) + 1)):
        if cancel is not None and cancel.is_set():
            raise CancelledError(f"micro-expression refinement cancelled at frame {frame_index[i]}")
        canvas_frames.append(canvas.warp(to_gray(image)))
    warp = mesh_warp(on_canvas, geometry.faces, canvas.size)
    tracked = track_window(canvas_frames, reference, canvas, points,
                           lambda i: warp.field(canvas.to_canvas(images[i, :, :2])), progress)
    tracks = tracked.positions
    confidence = tracked.confidence * front_facing(images, geometry.faces, FRAME_MIN_COSINE)[:, samples.triangle]

    fitted = samples.points(images[..., :2])
    residual = fast_part(tracks - fitted, fps, config.detrend_s, config.smooth_s)  # what the fit misses, briefly
    tracks = fitted + residual
    landmarks_2d = observations.landmarks[rows][:, model.landmark_ids.numpy(), :2]
    fitted_landmarks = landmark_points(model, images)
    landmarks_2d = fitted_landmarks + fast_part(landmarks_2d - fitted_landmarks, fps, config.detrend_s, config.smooth_s)
    lag = max(1, int(round(SPEED_LAG_S * fps)))
    if config.onset is not None and config.onset in frame_index:
        onset = int(np.nonzero(frame_index == config.onset)[0][0])
    else:
        speed = motion_speed(residual, points, samples.region, samples.num_regions, confidence, lag)
        onset, _ = find_onset(speed, fps, lag)
    energy = motion_energy(residual, points, samples.region, samples.num_regions, confidence)
    data = WindowData(
        times=observations.timestamp[rows].astype(np.float64), onset=onset, identity=fit.identity,
        expression=fit.expression[rows], rotation=fit.rotation[rows], neck=fit.neck[rows], jaw=fit.jaw[rows],
        eyes=fit.eyes[rows], camera=fit.camera[rows],
        landmarks=landmarks_2d, samples=samples, tracks=tracks.astype(np.float32),
        confidence=confidence.astype(np.float32), iod=iod,
    )
    log.info("window %d-%d: %d flow samples on a %dx%d canvas, onset frame %d", frame_index[0], frame_index[-1],
             len(samples), canvas.size[1], canvas.size[0], frame_index[onset])
    return data, energy


def fast_part(residual: np.ndarray, fps: float, detrend_s: float, smooth_s: float = 0.0) -> np.ndarray:
    """T x K x D residual minus its running median over ``detrend_s`` seconds (per point and
    component): what changes briefly, as a micro-expression does; drifts of the flow and slow
    biases of the fit are left out (detrend_s <= 0: kept). Then smoothed in time with a Gaussian
    of ``smooth_s`` seconds (frame-to-frame flow noise; 0: not smoothed)."""
    width = int(round(detrend_s * fps)) | 1
    if detrend_s > 0 and width >= 3 and len(residual) >= 3:
        residual = residual - running_median(residual, min(width, 2 * len(residual) - 1))
    if smooth_s > 0 and len(residual) >= 3:
        residual = gaussian_filter1d(residual, smooth_s * fps, axis=0, mode="nearest")
    return residual


def running_median(values: np.ndarray, width: int) -> np.ndarray:
    """The median over ``width`` (odd) consecutive rows centred on each row of ``values`` (T x
    ...), the first and last rows repeated beyond the ends: scipy's ``median_filter`` along the
    first axis with mode "nearest", to the bit. bottleneck's double heap costs O(log width) a
    value where scipy's selection costs O(width): 0.08 s instead of 0.92 for the tracks of a
    180-frame window at 120 fps (85 rows, 3 063 points)."""
    import bottleneck  # 76 ms to import; only a refinement needs it

    half = width // 2
    padded = np.concatenate([np.repeat(values[:1], half, axis=0), values, np.repeat(values[-1:], half, axis=0)])
    return bottleneck.move_median(padded, width, axis=0)[width - 1:]


def landmark_points(model: FaceModel, images: np.ndarray) -> np.ndarray:
    """T x L x 2 image positions of the model's landmarks on T x V x 3 image-space vertices."""
    faces = model.faces.numpy()[model.landmark_faces.numpy()]
    return (images[:, faces, :2] * model.landmark_barycentric.numpy()[None, :, :, None]).sum(axis=2)


def new_refiner(num_expression: int, config: RefineConfig) -> MicroExpressionRefiner:
    """A refiner with the configured pretrained weights, or seeded fresh ones (the global random
    state is left as it was)."""
    with torch.random.fork_rng():
        torch.manual_seed(config.seed)
        refiner = MicroExpressionRefiner.from_config(num_expression, config)
    if config.weights:
        from core.microexpr.results import load_weights

        load_weights(refiner, config.weights)
    return refiner


class RefinedWindows(Protocol):
    """Where :func:`refine_clip` keeps the windows it refined, by start row: a rerun reuses them,
    and the assembly reads them back one at a time (core/microexpr/take_stage.py stores them in
    the take, so that a long clip's windows are never all in memory)."""

    def __contains__(self, start: object) -> bool: ...

    def __getitem__(self, start: int) -> WindowResult: ...

    def add(self, window: WindowResult) -> None: ...


class WindowsInMemory(dict[int, WindowResult]):
    """Refined windows held in a dict (short clips, tests)."""

    def add(self, window: WindowResult) -> None:
        self[window.start] = window


def refine_clip(
    source: FrameSource,
    observations: ObservationArrays,
    fit: FitParams,
    model: FaceModel,
    config: RefineConfig,
    cancel: threading.Event | None = None,
    windows_done: RefinedWindows | None = None,
) -> Generator[StageProgress, None, Refinement]:
    """Refine a fitted clip. ``windows_done``: where refined windows are kept (None: in memory);
    those it already holds are reused, and each newly refined window is added to it. Yields
    progress of the flow (frames) and of the training (steps); returns the assembled
    :class:`Refinement`."""
    done = WindowsInMemory() if windows_done is None else windows_done
    fps = float(source.info.fps) or 30.0
    windows = plan_windows(fit.has_face, fps, config.window_s, config.overlap_s)
    todo = [w for w in windows if w[0] not in done]
    flow_total = sum(b - a for a, b in todo)
    refine_total = len(todo) * config.iterations
    geometry = ClipGeometry(model, fit, config)
    flow_done = refine_done = 0
    pending: deque[StageProgress] = deque()  # the flow's progress, reported from its threads
    counting = threading.Lock()  # a window's two flow directions count from two threads

    def flow_progress(n: int) -> None:
        nonlocal flow_done
        if cancel is not None and cancel.is_set():  # stops the flow within a frame, here or ahead
            raise CancelledError("micro-expression refinement cancelled; a new run resumes after the last window")
        with counting:
            flow_done += n
            if flow_done % 16 == 0 or flow_done == flow_total:
                pending.append(StageProgress(FLOW_STEP, flow_done, flow_total))

    def reported() -> Iterator[StageProgress]:
        while pending:
            yield pending.popleft()

    def prepared(window: tuple[int, int]) -> tuple[int, int, WindowData, np.ndarray]:
        # torch's thread count is the calling thread's (OpenMP): on two, this thread would keep an
        # OpenMP team of its own, which held the training's two threads to one thread's speed
        with single_threaded_torch():
            return (*window, *prepare_window(geometry, source, observations, *window, cancel, flow_progress))

    # The flow of the next window (OpenCV, the video) runs on a thread while the refiner trains on
    # this one (torch on one thread): the two cores work at once on clips of several windows. The
    # last window trains alone, on all of torch's threads (a step of a 120 fps window: 69 instead
    # of 84 ms on two cores).
    threads = torch.get_num_threads()
    with single_threaded_torch():
        for index, (start, stop, data, energy) in enumerate(map_ahead(prepared, todo, workers=1, ahead=1)):
            yield from reported()
            refiner = new_refiner(model.num_expression, config)
            training = train_window(model, refiner, geometry.regions, data, config)
            with torch_threads(threads if index == len(todo) - 1 else 1):
                while True:
                    try:
                        step = next(training)
                    except StopIteration as stop_iteration:
                        refined: WindowRefinement = stop_iteration.value
                        break
                    if cancel is not None and cancel.is_set():
                        raise CancelledError("micro-expression refinement cancelled; a new run resumes after the last window")
                    if step % 10 == 0 or step == config.iterations:
                        yield from reported()
                        yield StageProgress(REFINE_STEP, refine_done + step, refine_total)
            refine_done += config.iterations
            result = WindowResult(
                start, stop, start + data.onset, energy.astype(np.float32), refined.expression, refined.rotation,
                refined.camera, refined.offsets, {name: values[-1] for name, values in refined.losses.items()},
            )
            done.add(result)
            del refined, result, data
            release_freed_memory()
    return assemble(windows, done.__getitem__, fit, model.num_vertices)


def blend_weights(windows: list[tuple[int, int]], count: int) -> list[np.ndarray]:
    """Cross-fade weights of each window over its own rows (b - a each, of ``count`` frames): 1
    inside a window, linear ramps where neighbours overlap, normalised to sum 1 on every covered
    frame. Per window, not W x count: a long clip has hundreds of windows."""
    weights = []
    total = np.zeros(count)
    for i, (a, b) in enumerate(windows):
        w = np.ones(b - a)
        if i > 0 and windows[i - 1][1] > a:
            n = windows[i - 1][1] - a
            w[:n] = np.minimum(w[:n], (np.arange(n) + 1) / (n + 1))
        if i + 1 < len(windows) and windows[i + 1][0] < b:
            n = b - windows[i + 1][0]
            w[b - a - n:] = np.minimum(w[b - a - n:], (n - np.arange(n)) / (n + 1))
        weights.append(w)
        total[a:b] += w
    return [w / total[a:b] for w, (a, b) in zip(weights, windows)]


def blended_offsets(windows: list[tuple[int, int]], weights: list[np.ndarray],
                    load: Callable[[int], WindowResult]) -> Iterator[tuple[int, np.ndarray]]:
    """The cross-faded per-vertex offsets of the refined rows, as (first row, B x V x 3 float32
    metres) blocks in row order, each final when it is yielded. Windows are loaded one at a time
    and only neighbours overlap (plan_windows), so at most two windows' offsets are held."""
    pending_start, pending = 0, None  # the previous window's rows that the next may still add to
    for (start, _), k in zip(windows, weights):
        block = (k[:, None, None] * load(start).offsets).astype(np.float32)  # float32 keeps 1e-10 m
        if pending is not None:
            shared = max(0, pending_start + len(pending) - start)
            if start > pending_start:
                yield pending_start, pending[: start - pending_start]
            block[:shared] += pending[len(pending) - shared:]
        pending_start, pending = start, block
    if pending is not None:
        yield pending_start, pending


def assemble(windows: list[tuple[int, int]], load: Callable[[int], WindowResult], fit: FitParams,
             num_vertices: int) -> Refinement:
    """Cross-fade the refined ``windows`` ((start, stop) rows in order; ``load(start)`` reads
    one) into per-frame results for the whole clip. Each window is loaded three times, one or two
    at a time: for the per-frame parameters, the offsets' Gram matrix and their coefficients."""
    n = len(fit)
    weights = blend_weights(windows, n)
    refined = np.zeros(n, bool)
    for a, b in windows:
        refined[a:b] = True
    expression = np.where(refined[:, None], 0.0, fit.expression).astype(np.float64)
    rotation = np.where(refined[:, None], 0.0, fit.rotation).astype(np.float64)
    camera = np.where(refined[:, None], 0.0, fit.camera).astype(np.float64)
    energy = np.full(n, np.nan)
    energy[refined] = 0.0
    onset = np.full(n, -1, np.int64)
    best = np.zeros(n)
    onsets = []
    for (a, b), k in zip(windows, weights):
        w = load(a)
        rows = slice(a, b)
        expression[rows] += k[:, None] * w.expression
        rotation[rows] += k[:, None] * w.rotation
        camera[rows] += k[:, None] * w.camera
        energy[rows] += k * w.motion_energy
        take = k > best[rows]
        onset[rows] = np.where(take, fit.frame_index[w.onset], onset[rows])
        best[rows] = np.maximum(best[rows], k)
        onsets.append(w.onset)
    # frames not refined: zero offsets, zero coefficients
    basis, all_coefficients = streamed_offsets_basis(lambda: blended_offsets(windows, weights, load), n,
                                                     (num_vertices, 3))
    table = np.array([[fit.frame_index[a], fit.frame_index[b - 1] + 1, fit.frame_index[o]]
                      for (a, b), o in zip(windows, onsets)], np.int64).reshape(-1, 3)
    return Refinement(
        frame_index=fit.frame_index.copy(), refined=refined, onset=onset, motion_energy=energy.astype(np.float32),
        expression=expression.astype(np.float32), rotation=rotation.astype(np.float32), camera=camera.astype(np.float32),
        offset_basis=basis, offset_coefficients=all_coefficients, windows=table,
    )
