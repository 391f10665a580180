"""The emotion stage of an analysis: timelines of the performer's emotion and of the
reconstruction's, their consistency, and the emotion-from-parameters model.

1. The fast recogniser (FER mini-Xception, ~1 ms) sees every frame with a face: one sequential
   pass over the video, crops warped with the stored crop transforms, on a thread of its own
   (core/emotion/fast_pass.py). In an analysis it starts as soon as the observations are complete
   and runs beside the fit (:meth:`EmotionStage.start_ahead`); otherwise beside the work here that
   does not depend on its scores (4., and 3. when it is the only recogniser).
2. The slow recogniser (EmoNet, ~0.25 s on a CPU) sees the frames ``choose_frames`` picks: every
   ``slow_step_seconds`` of each run of face frames, the run's ends, and frames where the fast
   recogniser's probabilities moved; the rest is interpolated in time inside each run. Frames are
   read by exact random access.
3. The reconstruction is rendered from the camera's view, textured with the performer's pixels
   from a reference frame (core/render/reference.py: a quiet frame with no hand over the face,
   the one the fast recogniser reads as least expressive), and judged: by the slow recogniser on
   its sampled frames, by the fast one on those and on the frames ``choose_frames`` picks from the
   fit (every ``render_step_seconds`` of each run of face frames, the run's ends, and frames where
   the fitted curves and head rotation moved by ``render_change``; a render of every frame costs
   more than the rest of the stage, and between such frames the fast recogniser's reading of the
   render changes by less than a one-pixel shift of the render changes it; README, Performance).
   Consistency = 1 - Jensen-Shannon divergence on each judged frame (NaN on the others, as for
   the slow one).
   Each frame is rendered once, with as many pixels as the recognisers judging it use
   (``render_side``: FER 128, EmoNet 256).
4. The curves alone, worn by a neutral carrier face (core/emotion/carrier.py), are rendered every
   ``carrier_step_seconds`` of each run of face frames (and at its ends), judged by every
   recogniser and interpolated between: the emotion of the face that leaves EmoCap, and how much
   of the performer's it carries (``carried``, the same measure as consistency).
5. A small network learns emotion from the fitted expression parameters (core/emotion/from_params),
   on a thread beside the renders of 3., as soon as the primary recogniser's timeline is known:
   the fast recogniser's thread trains it after its pass when it is the only one, a thread of its
   own after 2. when the slow one is the primary.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from threadpoolctl import threadpool_limits

from core.emotion.carrier import FRAME, NONE, PHOTO, CarrierChoice, CarrierFace, carrier_choice, neutral_photo, photo_carrier
from core.emotion.consistency import consistency
from core.emotion.fast_pass import FastPass
from core.emotion.from_params import ParamEmotionNet, train_param_emotion
from core.emotion.stored import EmotionTimelines, RecogniserTimeline
from core.emotion.timeline import choose_frames, cuts_from_boxes, dominant_segments, intensity, interpolate, smooth
from core.emotion.types import AUTO, EMOTIONS, FAST, SLOW, EmotionScores
from core.errors import CancelledError
from core.fit.params import FitParams
from core.observe.align import warp_crop
from core.observe.crop_batches import read_face_crops
from core.prefetch import map_ahead
from core.render.appearance import appearance_maps_digest
from core.results import StageProgress
from core.stages import RunContext, Stage, json_ready
from core.take import Take
from core.take.observations import ObservationArrays
from core.take.records import COMPLETE, RUNNING, EmotionRecord, EmotionSummary
from core.video import FrameSource

if TYPE_CHECKING:
    from core.emotion.recognisers import EmotionRecogniser

log = logging.getLogger(__name__)

# Renders run on threads ahead of the recognisers that judge them: numpy releases the GIL for much
# of a render (two threads render the Wolfgang clip 1.2-1.4x faster than one on 2 cores).
RENDER_THREADS = 2
# In the change that picks frames to render (render_change), a radian of head rotation counts as
# much as five full curves: a turn of 0.2 rad (11 degrees) alone picks a frame at render_change 1.
RENDER_ROTATION_WEIGHT = 5.0
CROP_SIZE = 256  # side in pixels of the aligned face crops the recognisers read


@dataclass(frozen=True)
class EmotionConfig:
    """recognisers: names to run (the fast one on every frame, the slow one sampled).
    slow_step_seconds: sampling period of the slow recogniser. change: L1 change of the fast
    recogniser's probabilities that adds a slow sample. smooth_seconds: sigma of the zero-phase
    smoothing. batch: faces per recogniser call. carrier_step_seconds: sampling period of the
    curves on the carrier face (core/emotion/carrier.py; each judged face costs EmoNet 80 ms in
    float32, 38 in bfloat16, on a 2-core CPU). carrier: the path of a neutral photo whose face
    wears the curves (None: the take's neutral photo or reference frame). precision: the
    recognisers' precision (core.emotion.types.PRECISIONS: "auto" lets EmoNet run in bfloat16
    where the CPU does so natively, "float32" never). render_step_seconds, render_change: which
    frames' reconstructions the fast recogniser judges besides the slow one's (module docstring,
    3.; render_step_seconds 0: every frame): the period, and the change of the fit (L1 of the
    curve weights, plus the head rotation in radians times RENDER_ROTATION_WEIGHT) since the last
    judged frame that adds one."""

    recognisers: tuple[str, ...] = (FAST, SLOW)
    slow_step_seconds: float = 0.5
    change: float = 0.3
    render_step_seconds: float = 0.125
    render_change: float = 1.0
    smooth_seconds: float = 0.06
    batch: int = 32
    carrier_step_seconds: float = 1.0
    carrier: str | None = None
    precision: str = AUTO


@dataclass
class EmotionResult:
    """What the emotion stage computed: each recogniser's timeline, the primary one, the
    reference frame of the renders, the emotion-from-parameters model and its report, the
    carrier face, and what ran each recogniser (name -> its ``runtime``)."""

    timelines: dict[str, RecogniserTimeline]
    primary: str
    reference_frame: int
    param_model: ParamEmotionNet | None
    param_report: dict = field(default_factory=dict)
    carrier: CarrierChoice = CarrierChoice(NONE)
    runtimes: dict[str, str] = field(default_factory=dict)

    def summary(self, has_face: np.ndarray) -> EmotionSummary:
        main = self.timelines[self.primary]
        faces = has_face & ~np.isnan(main.probabilities).any(axis=1)
        mean = np.nanmean(main.probabilities[faces], axis=0) if faces.any() else None
        return EmotionSummary(
            dominant_emotion=EMOTIONS[int(np.argmax(mean))] if mean is not None else None,
            emotion_segments=dominant_segments(main.probabilities, faces, min_frames=3),
            mean_consistency={name: _mean(t.consistency) for name, t in self.timelines.items()},
            mean_carried={name: _mean(t.carried) for name, t in self.timelines.items()},
            carrier=self.carrier.describe(),
            emotion_recogniser=self.primary,
        )

    def stored(self) -> EmotionTimelines:
        """The result in the form a take stores."""
        return EmotionTimelines.of(self.timelines, self.primary, self.param_model)

    def record(self, settings: dict, has_face: np.ndarray) -> EmotionRecord:
        """The take's (complete) record of this result, made with ``settings``."""
        return EmotionRecord(
            settings=settings, status=COMPLETE, primary=self.primary, recognisers=list(self.timelines),
            reference_frame=self.reference_frame,
            measured_frames={name: int(t.measured.sum()) for name, t in self.timelines.items()},
            rendered_frames={name: int(np.isfinite(t.render_probabilities).all(axis=1).sum())
                             for name, t in self.timelines.items()},
            param_model=self.param_report, summary=self.summary(has_face), carrier=self.carrier.to_dict(),
            runtimes=dict(self.runtimes),
        )


def _mean(values: np.ndarray | None) -> float | None:
    return round(float(np.nanmean(values)), 4) if values is not None and np.isfinite(values).any() else None


def expressiveness_judge(recogniser: EmotionRecogniser, observations: ObservationArrays,
                         crop_size: int = CROP_SIZE) -> Callable[[list[np.ndarray], list[int]], np.ndarray]:
    """How clearly ``recogniser`` reads an emotion on frames of these observations, as the reference
    frame's choice takes it (core/render/reference.py): (frames, each H x W x 3 uint8 RGB; their
    observation rows) -> N in [0, 1], the largest non-neutral probability on each aligned face crop."""

    def judge(images: list[np.ndarray], rows: list[int]) -> np.ndarray:
        crops = np.stack([warp_crop(image, observations.crop_transform[r].astype(np.float64), crop_size)
                          for image, r in zip(images, rows)])
        return intensity(recogniser.predict(crops).probabilities)

    return judge


def analyse_emotion(
    source: FrameSource,
    observations: ObservationArrays,
    fit: FitParams | None,
    model,
    recognisers: dict,
    config: EmotionConfig,
    cancel: threading.Event | None = None,
    carrier: CarrierFace | CarrierChoice | None = None,
    fast_pass: FastPass | None = None,
) -> Generator[StageProgress, None, EmotionResult]:
    """Yields StageProgress while working; returns the EmotionResult.
    recognisers: name -> EmotionRecogniser (already loaded). carrier: the carrier face, or a
    CarrierChoice of kind "frame" (the renders' reference frame) or "none" (None: "none").
    fast_pass: the fast recogniser's pass over these observations, started ahead
    (:meth:`EmotionStage.start_ahead`; used when it is the pass this call would start, closed
    either way)."""
    from core.render.reconstruction import ReconstructionRenderer
    from core.render.reference import choose_uncovered_reference_frame

    n = len(observations)
    has_face = observations.has_face.copy()
    rows = np.nonzero(has_face)[0]
    fps = source.info.fps or 30.0
    crop_size = CROP_SIZE

    def check_cancel() -> None:
        if cancel is not None and cancel.is_set():
            raise CancelledError("emotion analysis cancelled; run again to redo it")

    names = [name for name in config.recognisers if name in recognisers]
    fast = FAST if FAST in names else names[0]
    # 3. the renders' reference frame (read first: the fast recogniser's pass then has the video),
    # the quiet frame the fast recogniser reads as least expressive
    renderer = None
    reference = -1
    if fit is not None and fit.has_face.any():
        reference = choose_uncovered_reference_frame(
            fit, observations, source.read, expressiveness=expressiveness_judge(recognisers[fast], observations, crop_size))
        renderer = ReconstructionRenderer(model, fit, observations, reference_frame=reference)
        renderer.set_reference(reference, source.read(int(observations.index[reference])))

    step = max(int(round(config.slow_step_seconds * fps)), 1)
    timelines = {}
    times = observations.timestamp
    cuts = cuts_from_boxes(np.nan_to_num(observations.box), has_face)
    sigma = config.smooth_seconds * fps

    # 1. every face frame through the fast recogniser, one sequential decode on a thread of its own,
    # beside the work that does not depend on it (4., and 3. when only the fast recogniser judges)
    primary = SLOW if SLOW in names else fast
    training: Future | None = None  # the emotion-from-curves network, learning beside the renders
    if fast_pass is not None and not fast_pass.serves(fast, observations, crop_size, config.batch):
        fast_pass.close()
        fast_pass = None
    if fast_pass is None:
        fast_pass = FastPass(fast, recognisers[fast], source, observations, crop_size, config.batch, cancel)
    try:
        if fit is not None and primary == fast:  # it learns from the fast timeline, next on the same thread
            training = fast_pass.then(lambda: _train_from_curves(
                fit, _smoothed(EmotionScores(fast_pass.future.result()[rows]), rows, has_face, times, sigma, cuts)))
        choice, carrier_rows, carrier_raw = yield from _carrier_pass(
            carrier, renderer, reference, fit, has_face, fps, {k: recognisers[k] for k in names}, config, check_cancel)
        render_probs = None
        fast_renders = _frames_to_render(fit, has_face, fps, config) if renderer is not None else None
        if renderer is not None and names == [fast]:
            render_probs = yield from _judge_renders(renderer, fit, {fast: fast_renders}, n, {fast: recognisers[fast]},
                                                     config.batch, check_cancel)
        fast_scores = yield from fast_pass.result("emotion: fast recogniser")
    finally:
        fast_pass.close()

    # 2. the slow recogniser on chosen frames
    measured_rows = {name: rows if name == fast else choose_frames(has_face, step, np.nan_to_num(fast_scores), config.change)
                     for name in names}
    raw_scores = {fast: EmotionScores(fast_scores[rows])}
    for name in names:
        if name == fast:
            continue
        parts = []
        for k in range(0, len(measured_rows[name]), config.batch):
            check_cancel()
            chunk = list(measured_rows[name][k : k + config.batch])
            parts.append(recognisers[name].predict(read_face_crops(source, observations, chunk, crop_size)))
            yield StageProgress(f"emotion: {name} on frames", min(k + config.batch, len(measured_rows[name])),
                                len(measured_rows[name]))
        raw_scores[name] = _concat(parts)
    if fit is not None and training is None:  # the primary is the slow one: it learns beside the renders
        learner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="emotion-curves")
        training = learner.submit(_train_from_curves, fit, _smoothed(raw_scores[primary], measured_rows[primary], has_face,
                                                                     times, sigma, cuts))
        learner.shutdown(wait=False)
    # 3. the renders of the reconstruction, judged by each recogniser on the frames it measured
    if render_probs is None and renderer is not None:
        # the fast recogniser also judges every render made for the slow one (it costs ~1 ms)
        judged = {name: measured_rows[name] for name in names if name != fast}
        judged[fast] = np.unique(np.concatenate([fast_renders, *judged.values()]))
        render_probs = yield from _judge_renders(renderer, fit, judged, n, {k: recognisers[k] for k in names},
                                                 config.batch, check_cancel)
    if render_probs is None:
        render_probs = {name: np.full((n, len(EMOTIONS)), np.nan, np.float32) for name in names}
    for name in names:
        raw = np.full((n, len(EMOTIONS)), np.nan, np.float32)
        raw[measured_rows[name]] = raw_scores[name].probabilities
        measured = np.zeros(n, bool)
        measured[measured_rows[name]] = True
        probs, valence, arousal = _smoothed(raw_scores[name], measured_rows[name], has_face, times, sigma, cuts)
        carried_probs = carried = None
        if name in carrier_raw and len(carrier_rows):
            carried_probs = smooth(interpolate(carrier_raw[name][carrier_rows], carrier_rows, has_face & fit.has_face, times),
                                   has_face & fit.has_face, sigma, cuts)
            carried_probs = (carried_probs / np.nansum(carried_probs, axis=1, keepdims=True)).astype(np.float32)
            carried = consistency(probs, carried_probs)
        timelines[name] = RecogniserTimeline(
            name, measured, raw, probs.astype(np.float32), valence, arousal, intensity(probs).astype(np.float32),
            render_probs[name], consistency(raw, render_probs[name]), carrier_raw.get(name), carried_probs, carried,
        )

    net, report = training.result() if training is not None else (None, {})
    return EmotionResult(timelines, primary, reference, net, report, choice,
                         {name: recognisers[name].runtime for name in names})


def _smoothed(scores: EmotionScores, measured_rows: np.ndarray, has_face: np.ndarray, times: np.ndarray, sigma: float,
              cuts) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """A recogniser's ``scores`` of ``measured_rows`` interpolated in time to every face frame and
    smoothed (``sigma`` frames, not across ``cuts``): probabilities N x 8 (normalised), valence
    and arousal N each (None when it gives none)."""
    probs = smooth(interpolate(scores.probabilities, measured_rows, has_face, times), has_face, sigma, cuts)
    probs = probs / np.nansum(probs, axis=1, keepdims=True)
    if scores.valence is None:
        return probs, None, None
    va = smooth(interpolate(np.stack([scores.valence, scores.arousal], axis=1), measured_rows, has_face, times),
                has_face, sigma, cuts)
    return probs, va[:, 0], va[:, 1]


def _train_from_curves(fit: FitParams, smoothed: tuple[np.ndarray, np.ndarray | None, np.ndarray | None],
                       ) -> tuple[ParamEmotionNet | None, dict]:
    """The emotion-from-curves network trained on the fitted frames where the primary
    recogniser's timeline (:func:`_smoothed`) has a value: (network, report), or (None, {}) with
    fewer than 10 such frames."""
    probs, valence, arousal = smoothed
    probs = probs.astype(np.float32)  # as the timeline stores them
    target_rows = np.nonzero(fit.has_face & ~np.isnan(probs).any(axis=1))[0]
    if len(target_rows) < 10:
        return None, {}
    target = EmotionScores(probs[target_rows], None if valence is None else valence[target_rows],
                           None if arousal is None else arousal[target_rows])
    net, training = train_param_emotion(fit.expression[target_rows], target)
    return net, {"frames": training.frames, "held_out_kl": round(training.held_out_kl, 4),
                 "top_class_agreement": round(training.top_class_agreement, 4)}


def _frames_to_render(fit: FitParams, has_face: np.ndarray, fps: float, config: EmotionConfig) -> np.ndarray:
    """The rows whose reconstruction the fast recogniser judges (module docstring, 3.): sorted
    rows with a face in the observations and the fit."""
    faces = has_face & fit.has_face
    if config.render_step_seconds <= 0:
        return np.nonzero(faces)[0]
    signal = np.concatenate([fit.expression, RENDER_ROTATION_WEIGHT * fit.rotation], axis=1).astype(np.float64)
    return choose_frames(faces, max(int(round(config.render_step_seconds * fps)), 1), signal, config.render_change)


def _carrier_pass(carrier: CarrierFace | CarrierChoice | None, renderer, reference: int, fit: FitParams | None,
                  has_face: np.ndarray, fps: float, recognisers: dict, config: EmotionConfig, check_cancel,
                  ) -> Generator[StageProgress, None, tuple]:
    """4. The curves on the carrier face: (its CarrierChoice, the rows judged on it, each
    recogniser's N x 8 probabilities of them)."""
    choice = carrier.choice if isinstance(carrier, CarrierFace) else (carrier or CarrierChoice(NONE))
    if fit is None or renderer is None:
        carrier, choice = None, CarrierChoice(NONE, reason="no fitted face")
    elif choice.kind == FRAME:
        choice = dataclasses.replace(choice, frame=reference)
        carrier = CarrierFace(renderer, reference, choice)
    if not isinstance(carrier, CarrierFace):
        return choice, np.array([], np.int64), {}
    rows = choose_frames(has_face & fit.has_face, max(int(round(config.carrier_step_seconds * fps)), 1))
    raw = yield from _judge_on_carrier(carrier, fit, rows, len(has_face), recognisers, config.batch, check_cancel)
    return choice, rows, raw


def _judge_renders(renderer, fit: FitParams, measured_rows: dict[str, np.ndarray], n: int, recognisers: dict,
                   batch: int, check_cancel) -> Generator[StageProgress, None, dict[str, np.ndarray]]:
    """Each recogniser's N x 8 probabilities of the reconstruction's renders of the frames it
    measured (``measured_rows``: name -> sorted rows; NaN elsewhere and where the fit has no face).
    Every frame is rendered once, at the largest ``render_side`` of the recognisers that measured
    it, and judged by each of them (the slow one's frames are among the fast one's)."""
    out = {name: np.full((n, len(EMOTIONS)), np.nan, np.float32) for name in recognisers}
    wanted = {name: np.zeros(n, bool) for name in recognisers}
    side = np.zeros(n, np.int64)
    for name, rows in measured_rows.items():
        wanted[name][rows] = True
        wanted[name] &= fit.has_face
        side[wanted[name]] = np.maximum(side[wanted[name]], recognisers[name].render_side)
    render_rows = np.nonzero(side)[0]
    chunks = []
    for size in np.unique(side[render_rows]):
        rows = render_rows[side[render_rows] == size]
        chunks += [(rows[k : k + batch], int(size)) for k in range(0, len(rows), batch)]
    done = 0
    for chunk, crops in _render_ahead(lambda job: (job[0], renderer.render_crop_batch(*job)[0]), chunks):
        check_cancel()
        for name, recogniser in recognisers.items():
            judged = wanted[name][chunk]
            if judged.any():
                out[name][chunk[judged]] = recogniser.predict(crops[judged]).probabilities
        done += len(chunk)
        yield StageProgress("emotion: reconstructions", done, len(render_rows))
    return out


def _judge_on_carrier(carrier: CarrierFace, fit: FitParams, rows: np.ndarray, n: int, recognisers: dict, batch: int,
                      check_cancel) -> Generator[StageProgress, None, dict[str, np.ndarray]]:
    """Each recogniser's N x 8 probabilities of the curves of ``rows`` (sorted) worn by the carrier
    (NaN in other rows); one render per row, at the largest ``render_side`` of the recognisers,
    judged by every recogniser."""
    size = max(recogniser.render_side for recogniser in recognisers.values())
    out = {name: np.full((n, len(EMOTIONS)), np.nan, np.float32) for name in recognisers}
    chunks = [rows[k : k + batch] for k in range(0, len(rows), batch)]
    done = 0
    for chunk, crops in _render_ahead(lambda chunk: (chunk, carrier.render(fit, chunk, size)), chunks):
        check_cancel()
        for name, recogniser in recognisers.items():
            out[name][chunk] = recogniser.predict(crops).probabilities
        done += len(chunk)
        yield StageProgress("emotion: curves on the carrier face", done, len(rows))
    return out


def _render_ahead(render: Callable[[Any], tuple], chunks: list) -> Iterator[tuple]:
    """``render(chunk)`` of each chunk, in order, computed on RENDER_THREADS threads ahead of the
    recognisers that judge them. numpy's BLAS runs on one thread meanwhile: the render threads
    already take both cores, and BLAS's own threads on top of them only spin (on 2 cores the
    Wolfgang clip's FER-only stage: 2.7 -> 2.3 s, 1.2 s less CPU)."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield from map_ahead(render, chunks, RENDER_THREADS)


def _concat(parts: list[EmotionScores]) -> EmotionScores:
    probs = np.concatenate([p.probabilities for p in parts])
    if parts[0].valence is None:
        return EmotionScores(probs)
    return EmotionScores(probs, np.concatenate([p.valence for p in parts]), np.concatenate([p.arousal for p in parts]))


class EmotionStage(Stage):
    """The emotion stage (core/stages.py), stored as TAKE/emotion/timelines.npz: current when it
    completed with the same settings on the same fit."""

    name = "emotion"

    def __init__(self, config: EmotionConfig) -> None:
        self.config = config
        self._ahead: FastPass | None = None

    def start_ahead(self, ctx: RunContext) -> None:
        """Start the fast recogniser's pass (it needs only the observations) while the fit runs,
        unless the stored timelines are current for the fit the take holds now (a rerun that
        keeps the fit keeps them)."""
        from core.emotion.recognisers import load_recogniser

        self.stop_ahead()
        record = self.record(ctx.take)
        if FAST not in self.config.recognisers or (record is not None and record.is_current(self.settings(ctx))):
            return
        observations = ctx.observations
        if not observations.has_face.any():
            return
        recogniser = load_recogniser(FAST, device=ctx.device, precision=self.config.precision)
        self._ahead = FastPass(FAST, recogniser, ctx.source, observations, CROP_SIZE, self.config.batch, ctx.cancel)
        log.debug("emotion: the fast recogniser's pass started ahead of the fit")

    def stop_ahead(self) -> None:
        if self._ahead is not None:
            self._ahead.close()
            self._ahead = None

    def settings(self, ctx: RunContext) -> dict[str, Any]:
        # the reconstruction's emotion judges the fit as read, closures applied: a refit or new
        # blink and lip-contact floors make it stale
        fit = ctx.take.manifest.fit
        return json_ready(dataclasses.asdict(self.config) | {"fit": None if fit is None else fit.settings,
                                                             "fitted": ctx.take.fit_digest(closures=True),
                                                             "carrier_face": self._carrier(ctx).to_dict(),
                                                             "appearance": appearance_maps_digest()})

    def _carrier(self, ctx: RunContext) -> CarrierChoice:
        fit = ctx.take.manifest.fit
        return carrier_choice(self.config.carrier, None if fit is None else neutral_photo(fit.neutral), len(ctx.observations))

    def record(self, take: Take) -> EmotionRecord | None:
        return take.manifest.emotion

    def start(self, ctx: RunContext, settings: dict[str, Any]) -> None:
        record = self.record(ctx.take)
        if record is not None and record.settings != settings:
            ctx.take.reset_emotion()
        ctx.take.manifest.emotion = EmotionRecord(settings, RUNNING)
        ctx.take.save_manifest()

    def resume(self, ctx: RunContext, settings: dict[str, Any]) -> Generator[StageProgress, None, None]:
        from core.emotion.recognisers import load_recogniser

        ahead, self._ahead = self._ahead, None  # analyse_emotion takes it over
        recognisers = {name: ahead.recogniser if ahead is not None and name == ahead.name
                       else load_recogniser(name, device=ctx.device, precision=self.config.precision)
                       for name in self.config.recognisers}
        fit = ctx.take.read_fit(complete=True)
        model = ctx.model if fit is not None and ctx.model_choice is not None else None
        observations = ctx.observations
        carrier: CarrierFace | CarrierChoice = CarrierChoice.from_dict(settings["carrier_face"])
        if model is not None and carrier.kind == PHOTO:
            carrier = photo_carrier(carrier, ctx.take.root, model, ctx.model_choice, ctx.device)
        result = yield from analyse_emotion(
            ctx.source, observations, fit if model is not None else None, model, recognisers, self.config, ctx.cancel,
            carrier, ahead,
        )
        ctx.take.write_emotion(result.stored(), result.record(settings, observations.has_face))
