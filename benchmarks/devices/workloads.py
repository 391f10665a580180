"""The torch workloads timed per device, one per stage, each through the project's own code path
on the shared analysed clip (benchmarks/devices/clip.py). Setup (loading weights, reading crops,
optical flow) is not timed; each measurement is the wall time (seconds) of the work itself, with
the GPU synchronised before and after."""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from benchmarks.devices.clip import AnalysedClip
from core.emotion.recognisers import load_recogniser
from core.encoder.config import EncoderConfig
from core.encoder.model import FaceEncoder
from core.encoder.runtime import EncoderRuntime
from core.errors import ModelIntegrityError, ModelNotInstalledError
from core.fit.fitter import FitConfig, Fitter, single_threaded_torch, slice_observations
from core.fit.stage import fit_clip
from core.microexpr.config import RefineConfig
from core.microexpr.refiner import train_window
from core.microexpr.stage import ClipGeometry, new_refiner, plan_windows, prepare_window
from core.stages import drain
from core.video import open_source
from training.actor import actor_config
from training.data.take_clip import load_take_samples
from training.trainer import Trainer

RECOGNISER_CROP = 256  # side (pixels) of the aligned crops the emotion stage gives the recognisers


@dataclass(frozen=True)
class Sizes:
    """Workload sizes. clip_frames: fixture frames analysed; fit_frames: frames fitted;
    fer_faces, emonet_faces, encoder_faces: faces per call; refine_steps: refiner training steps
    on one window; train_samples: samples of the one training epoch."""

    clip_frames: int
    fit_frames: int
    fer_faces: int
    emonet_faces: int
    encoder_faces: int
    refine_steps: int
    train_samples: int


# FULL: the whole fixture for the fit, the recognisers and the encoder, a third of a refiner
# window's training (RefineConfig runs 120 steps) and one epoch of 192 of its frames: under a
# minute on a 2-core CPU when nothing else runs. QUICK: a few seconds in all (the tests).
FULL = Sizes(clip_frames=472, fit_frames=472, fer_faces=472, emonet_faces=48, encoder_faces=472, refine_steps=40,
             train_samples=192)
QUICK = Sizes(clip_frames=60, fit_frames=24, fer_faces=16, emonet_faces=2, encoder_faces=16, refine_steps=2,
              train_samples=32)


@dataclass(frozen=True)
class Measurement:
    """workload: what was timed, in words; items: how many ``unit`` it processed; seconds: wall time."""

    workload: str
    items: int
    unit: str
    seconds: float


class Skipped(Exception):
    """The stage cannot run here (its reason is the message), which is not a failure."""


def timed(work: Callable[[], object], device: str) -> float:
    """Wall time of ``work()`` in seconds, the GPU's queued work included."""
    synchronise = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    synchronise()
    start = time.perf_counter()
    work()
    synchronise()
    return time.perf_counter() - start


def measure_fit(clip: AnalysedClip, device: str, sizes: Sizes) -> Measurement:
    observations = slice_observations(clip.observations, 0, sizes.fit_frames)

    def work() -> None:
        fitter = Fitter(clip.model, FitConfig())
        drain(fit_clip(fitter, observations, fitter.fit_identity(observations)))

    return Measurement(f"identity + fit of {len(observations)} frames, open model", len(observations), "frames",
                       timed(work, device))


def recogniser_measure(name: str, faces: Callable[[Sizes], int]) -> Callable[[AnalysedClip, str, Sizes], Measurement]:
    """The measurement of emotion recogniser ``name`` on ``faces(sizes)`` crops, as the emotion
    stage loads and calls it."""

    def measure(clip: AnalysedClip, device: str, sizes: Sizes) -> Measurement:
        try:
            recogniser = load_recogniser(name, device=device)
        except (ModelNotInstalledError, ModelIntegrityError) as err:
            raise Skipped(str(err)) from err
        crops = clip.crops(faces(sizes), RECOGNISER_CROP)
        recogniser.predict(crops[: recogniser.batch_size])  # warm-up
        seconds = timed(lambda: recogniser.predict(crops), device)
        return Measurement(f"{len(crops)} faces of {RECOGNISER_CROP} px, batches of {recogniser.batch_size}",
                           len(crops), "faces", seconds)

    return measure


def actor_training(clip: AnalysedClip, out: str, device: str):
    """train-actor's configuration for the clip's take (training/configs/actor.yaml), one epoch."""
    return actor_config(clip.take.root, out, epochs=1, device=device)


def measure_encoder(clip: AnalysedClip, device: str, sizes: Sizes) -> Measurement:
    spec = actor_training(clip, tempfile.gettempdir(), device).encoder
    torch.manual_seed(0)  # speed does not depend on the weights: a seeded untrained encoder
    encoder = FaceEncoder(EncoderConfig.for_model(clip.model, backbone=spec.backbone, width=spec.width,
                                                  input_size=spec.input_size))
    runtime = EncoderRuntime(encoder, device=device)
    crops = clip.crops(sizes.encoder_faces, spec.input_size)
    runtime.predict(crops[: runtime.batch_size])  # warm-up
    seconds = timed(lambda: runtime.predict(crops), device)
    return Measurement(f"{len(crops)} faces of {spec.input_size} px, {spec.backbone} x{spec.width} via {runtime.backend}, "
                       f"batches of {runtime.batch_size}", len(crops), "faces", seconds)


def measure_refiner(clip: AnalysedClip, device: str, sizes: Sizes) -> Measurement:
    config = dataclasses.replace(RefineConfig(), iterations=sizes.refine_steps)
    geometry = ClipGeometry(clip.model, clip.fit, config)
    with open_source(clip.video) as source:
        start, stop = plan_windows(clip.fit.has_face, float(source.info.fps), config.window_s, config.overlap_s)[0]
        data, _ = prepare_window(geometry, source, clip.observations, start, stop)  # optical flow: OpenCV, not timed

    def work() -> None:
        with single_threaded_torch():  # as refine_clip trains every window but the last
            drain(train_window(clip.model, new_refiner(clip.model.num_expression, config), geometry.regions, data, config))

    return Measurement(f"{config.iterations} training steps + inference on a {len(data)}-frame window, "
                       f"{config.frames_per_step} frames a step", config.iterations, "steps", timed(work, device))


def measure_training(clip: AnalysedClip, device: str, sizes: Sizes) -> Measurement:
    with tempfile.TemporaryDirectory(prefix="emocap-bench-train-") as out:
        config = actor_training(clip, out, device)
        spec = config.encoder
        encoder_config = EncoderConfig.for_model(clip.model, backbone=spec.backbone, width=spec.width,
                                                 input_size=spec.input_size)
        data = clip.cached(("training samples", sizes.train_samples, spec), lambda: load_take_samples(
            clip.take.root, clip.model, encoder_config, max_samples=sizes.train_samples))
        trainer = Trainer(config, data=data)
        seconds = timed(lambda: trainer.run(restart=True), device)
    return Measurement(f"1 epoch (train + validation) of {len(data)} samples of {spec.input_size} px, {spec.backbone} "
                       f"x{spec.width}, batches of {config.optim.batch_size}", len(data), "samples", seconds)


@dataclass(frozen=True)
class Stage:
    """name: as reported; measure: its workload; cpu_only: why it cannot take a CUDA device in
    the current code (None: it can)."""

    name: str
    measure: Callable[[AnalysedClip, str, Sizes], Measurement]
    cpu_only: str | None = None


STAGES = (
    Stage("fit", measure_fit, cpu_only="the Fitter takes no device: its Gauss-Newton steps solve in NumPy/SciPy "
                                       "(core/fit/fitter.py)"),
    Stage("emotion fer", recogniser_measure("fer", lambda s: s.fer_faces)),
    Stage("emotion emonet", recogniser_measure("emonet", lambda s: s.emonet_faces)),
    Stage("encoder", measure_encoder),
    Stage("refiner", measure_refiner, cpu_only="core/microexpr takes no device: the refiner's tensors and networks "
                                               "are made on the CPU (core/microexpr/refiner.py)"),
    Stage("training", measure_training),
)
