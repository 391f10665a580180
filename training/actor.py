"""Actor-specific training (``emocap train-actor TAKE``): distil a fitted take into a fast encoder
for its performer.

The take's fitted parameters are the pseudo ground truth (direct supervision of the 52 curves,
pose and camera), its landmarks the self-supervision, its emotion timeline (or the FER recogniser
run on the crops) the emotion target, and its least expressive frame the texture for the
photometric and render-emotion losses. Every 5th second of the clip (by default) is held out and
reported on. Result, in the take::

    TAKE/encoder/encoder.pt     the encoder (emocap analyze --method encoder uses it)
    TAKE/encoder/report.json    settings, timings and held-out errors against the fitter
    TAKE/encoder/run/           the training run (checkpoint, log.jsonl, config.yaml); resumable
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.atomic import write_json_atomic
from core.encoder.checkpoint import save_encoder
from core.take import Take
from core.take.lock import TakeLock
from training.config import TrainConfig, config_from_dict
from training.evaluate import encoder_fit_params, parameter_metrics
from training.samples import SampleArrays
from training.trainer import Trainer, TrainResult

log = logging.getLogger(__name__)

DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "actor.yaml"
ENCODER_DIR = "encoder"
# --emotion-losses: which emotion losses train-actor uses (weights; the rest of actor.yaml stays)
EMOTION_LOSSES = {
    "none": {"emotion": 0.0, "reconstruction_emotion": 0.0, "consistency": 0.0},
    "branch": {"emotion": 0.5, "reconstruction_emotion": 0.0, "consistency": 0.0},
    "all": {"emotion": 0.5, "reconstruction_emotion": 0.1, "consistency": 0.1},
}
# Samples seen in training when no epoch count is given: 30 epochs of a 400-frame clip, 5 of a
# 2,400-frame one (the base config's epochs are the most, 3 the fewest), so training time stays
# about the same whatever the clip's length: with the default losses at 128 px, 3,760 samples took
# 83 s on one thread of the shared 2-core test machine, so 12,000 take about 4.5 minutes.
SAMPLE_BUDGET = 12_000


def auto_epochs(train_frames: int, most: int) -> int:
    """Epochs for a clip with ``train_frames`` training frames (see SAMPLE_BUDGET)."""
    return int(min(max(round(SAMPLE_BUDGET / max(train_frames, 1)), 3), max(most, 3)))


def training_frames(take_dir: str | Path, every: int) -> int:
    """About how many frames of the take train (face frames minus the held-out share)."""
    take = Take.open(Path(take_dir))
    frames = int(take.manifest.frames_with_face)
    return frames - (frames // every if every > 0 else 0)


@dataclass
class ActorResult:
    """result: the training result; report: what report.json holds; encoder_path: the encoder."""

    result: TrainResult
    report: dict
    encoder_path: Path


def _take_performer(take_dir: str | Path) -> str | None:
    """The performer profile a take was fitted with (its path), or None."""
    fit = Take.open(Path(take_dir)).manifest.fit
    return None if fit is None else fit.settings.get("performer")


def actor_config(take_dir: str | Path, out: str | Path, *, base: str | Path = DEFAULT_CONFIG, epochs: int | None = None,
                 backbone: str | None = None, width: float | None = None, input_size: int | None = None,
                 threads: int | None = None, device: str | None = None, seed: int | None = None,
                 losses: dict | None = None, emotion_recogniser: str | None = None) -> TrainConfig:
    """The training config of an actor run: ``base`` (YAML) with the take as its only dataset, the
    face model the take was fitted with (a performer profile included) and the given overrides;
    without ``epochs``, :func:`auto_epochs` of the take's length with the base's epochs as the
    most. A ResNet-50 ignores ``width``."""
    import yaml

    raw = yaml.safe_load(Path(base).read_text()) or {}
    raw["out"] = str(Path(out).resolve())
    raw["data"] = [{"kind": "take", "path": str(Path(take_dir).resolve()), "emotion_recogniser": emotion_recogniser or "fer"}]
    performer = _take_performer(take_dir)
    if performer is not None:  # the encoder learns the face model the take was fitted with
        raw["model"] = dict(raw.get("model") or {}) | {"kind": "open", "performer": performer}
    for key, value in (("device", device), ("threads", threads), ("seed", seed)):
        if value is not None:
            raw[key] = value
    raw.setdefault("encoder", {})
    for key, value in (("backbone", backbone), ("width", width), ("input_size", input_size)):
        if value is not None:
            raw["encoder"][key] = value
    optim = raw.setdefault("optim", {})
    optim["epochs"] = int(epochs) if epochs is not None else auto_epochs(
        training_frames(take_dir, int((raw.get("validation") or {}).get("every", 5))), int(optim.get("epochs", 30)))
    if losses:
        raw["losses"] = dict(raw.get("losses") or {}) | losses
    return config_from_dict(raw, base=Path(base).parent)



def train_actor(take_dir: str | Path, config: TrainConfig | None = None, *, data: SampleArrays | None = None,
                encoder_dir: str | Path | None = None, restart: bool = False, cancel=None, on_epoch=None) -> ActorResult:
    """Train, evaluate on the held-out frames, store encoder.pt and report.json in ``encoder_dir``
    (default TAKE/encoder). ``config`` defaults to :func:`actor_config` with its defaults; ``data``
    skips reading the video again."""
    take = Take.open(Path(take_dir))
    encoder_dir = Path(encoder_dir) if encoder_dir else take.root / ENCODER_DIR
    inside = encoder_dir.resolve().is_relative_to(take.root.resolve())
    with TakeLock(take.root) if inside else contextlib.nullcontext():  # writing into the take: one writer
        return _train_actor(take, config, data, encoder_dir, restart, cancel, on_epoch)


def _train_actor(take: Take, config: TrainConfig | None, data: SampleArrays | None, encoder_dir: Path,
                 restart: bool, cancel, on_epoch) -> ActorResult:
    config = config or actor_config(take.root, encoder_dir / "run")
    began = time.perf_counter()
    trainer = Trainer(config, data=data)
    data = trainer.load_data()
    result = trainer.run(restart=restart, cancel=cancel, on_epoch=on_epoch)
    seconds = time.perf_counter() - began
    report = {
        "take": str(take.root), "frames": int(len(data)), "train_frames": int(len(result.train_rows)),
        "validation_frames": int(len(result.val_rows)), "seconds": round(seconds, 1),
        "config": config.to_dict(), "held_out": evaluate_held_out(take, trainer, data, result),
        "last_epoch": result.history[-1] if result.history else None,
    }
    encoder_dir.mkdir(parents=True, exist_ok=True)
    path = save_encoder(encoder_dir / "encoder.pt", result.encoder, result.meta | {"report": _json_ready(report["held_out"])})
    write_json_atomic(encoder_dir / "report.json", _json_ready(report))
    log.info("actor encoder for %s: %s", take.root, path)
    return ActorResult(result, report, path)


def evaluate_held_out(take: Take, trainer: Trainer, data: SampleArrays, result: TrainResult) -> dict:
    """Errors against the fitter on the held-out frames (empty when nothing was held out)."""
    if len(result.val_rows) == 0:
        return {}
    fit = take.read_fit()
    observations = take.load_observations()
    row_of_index = {int(i): r for r, i in enumerate(observations.index)}
    rows = np.array([row_of_index[int(i)] for i in data.order], np.int64)  # sample -> take row
    crop_size = float(take.manifest.settings.crop_size)
    pred, out = encoder_fit_params(result.encoder, data.images, rows, observations, trainer.model, crop_size)
    held = rows[result.val_rows]
    metrics = parameter_metrics(pred, fit, observations, trainer.model, held)
    # reference: predicting the training frames' mean expression for every held-out frame
    mean_expression = fit.expression[rows[result.train_rows]].mean(axis=0)
    metrics["mean_expression_baseline_mae"] = float(np.abs(fit.expression[held] - mean_expression).mean())
    target = data.emotion[result.val_rows]
    known = np.isfinite(target).all(axis=1)
    if known.any():
        branch = out.emotion_probabilities()[result.val_rows][known]
        metrics["emotion_branch_top_class_agreement"] = float((branch.argmax(1) == target[known].argmax(1)).mean())
    return metrics


def _json_ready(value):
    return json.loads(json.dumps(value, default=float))
