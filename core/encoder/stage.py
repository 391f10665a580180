"""The encoder stage of an analysis (``--method encoder``): per-frame parameters from a trained
encoder instead of the fitter, stored in the take exactly as fitted parameters are (TAKE/fit/), so
the emotion stage, export and the app read them the same way.

Which encoder: an explicit checkpoint path (an actor encoder is written by ``emocap train-actor
TAKE`` to TAKE/encoder/encoder.pt). Frames are decoded once in order,
each face frame's aligned crop is warped straight to the encoder's input size from the stored crop
transform, and batches run through onnxruntime on the CPU when available.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Generator
from pathlib import Path
from typing import Any

import numpy as np

from core.digest import file_sha256
from core.encoder.config import EncoderConfig
from core.encoder.crop_space import scaled_transforms
from core.encoder.model import EncoderOutput
from core.encoder.predict import to_fit_params
from core.encoder.runtime import EncoderRuntime
from core.errors import CancelledError, EncoderError
from core.facemodel.model import FaceModel
from core.fit.params import PER_FRAME, FitParams
from core.observe.crop_batches import face_crop_batches
from core.results import FitProgress, StageProgress
from core.stages import RunContext, Stage
from core.take import ObservationArrays, Take
from core.take.records import COMPLETE, RUNNING, FitRecord
from core.video import FrameSource

log = logging.getLogger(__name__)


def find_encoder(explicit: str | Path | None) -> Path:
    """The checkpoint to use; EncoderError saying how to get one when none is given or the path
    holds no file."""
    if not explicit:
        raise EncoderError(
            "--method encoder needs --encoder PATH: train one for this performer with "
            "'emocap train-actor TAKE' (on a fitted take), then pass --encoder TAKE/encoder/encoder.pt"
        )
    path = Path(explicit)
    if not path.is_file():
        raise EncoderError(f"no encoder checkpoint at {path}")
    return path


def check_compatible(config: EncoderConfig, model: FaceModel, path: Path) -> None:
    """EncoderError when the encoder was trained for another face model or other sizes."""
    if (config.model_name, config.num_shape, config.num_expression) != (model.name, model.num_shape, model.num_expression):
        raise EncoderError(
            f"{path} predicts {config.model_name} parameters ({config.num_shape} identity, "
            f"{config.num_expression} expression) but the analysis uses {model.name} ({model.num_shape}, "
            f"{model.num_expression}); choose the matching --model and component counts"
        )


def encode_take(take: Take, source: FrameSource, observations: ObservationArrays, model: FaceModel,
                runtime: EncoderRuntime, *, window: int, cancel: threading.Event | None = None
                ) -> Generator[StageProgress | FitProgress, None, None]:
    """Predict every face frame of the take, then store the parameters window by window in
    TAKE/fit/ (identity.npz and <first frame>.npz, as the fitter does)."""
    crop_size = float(take.manifest.settings.crop_size)
    size = runtime.input_size
    rows = np.nonzero(observations.has_face)[0]
    transforms = scaled_transforms(observations.crop_transform, crop_size, size)
    outputs, done_rows = [], []

    def check_cancel() -> None:
        if cancel is not None and cancel.is_set():
            raise CancelledError("encoding cancelled; run again to redo it")

    for batch_rows, crops in face_crop_batches(source, observations, rows, transforms, size, runtime.batch_size,
                                               check_cancel):
        outputs.append(runtime.predict(crops))
        done_rows.extend(batch_rows)
        if len(batch_rows) == runtime.batch_size:
            yield StageProgress("encoding", len(done_rows), len(rows))
    merged = EncoderOutput.concatenate(outputs) if outputs else EncoderOutput.empty(runtime.encoder.config)
    params = to_fit_params(merged, np.array(done_rows, np.int64), observations, model, crop_size)
    take.reset_fit()
    take.write_identity(params.identity)
    total = len(observations)
    for start in range(0, total, window):
        part = FitParams(identity=params.identity, **{k: getattr(params, k)[start:start + window] for k in PER_FRAME})
        take.write_fit_window(part)
        yield FitProgress(part, min(start + window, total), total)
    log.info("encoded %d face frames; mean landmark residual %.4f IOD", len(done_rows),
             float(np.nanmean(params.residual)) if len(done_rows) else float("nan"))


class EncoderStage(Stage):
    """The encoder's stage (core/stages.py), stored as the fit is: current when the fit was made
    by the same encoder file (its SHA-256) for the same face model."""

    name = "fit"

    def __init__(self, path: Path, window: int) -> None:
        self.path = path
        self.window = window
        self.runtime: EncoderRuntime | None = None  # loaded by start

    def settings(self, ctx: RunContext) -> dict[str, Any]:
        return ctx.model_choice.settings() | {"method": "encoder", "encoder": str(self.path.resolve()),
                                              "encoder_sha256": file_sha256(self.path)}

    def record(self, take: Take) -> FitRecord | None:
        return take.manifest.fit

    def start(self, ctx: RunContext, settings: dict[str, Any]) -> None:
        take, path, record = ctx.take, self.path, self.record(ctx.take)
        fitted = record is not None and record.complete and record.method != "encoder"
        if fitted and path.resolve().is_relative_to(take.root.resolve()):
            raise EncoderError(
                f"{take.root} holds the fit its own encoder ({path}) was trained on, and --method encoder "
                "would replace it; analyse into another take instead: "
                f"emocap analyze CLIP --out NEW_TAKE --method encoder --encoder {path}"
            )
        self.runtime = EncoderRuntime.from_checkpoint(path, device=ctx.device)
        model = ctx.model
        check_compatible(self.runtime.encoder.config, model, path)
        take.manifest.fit = FitRecord(settings, RUNNING, model.name, model.num_shape, list(model.expression_names))
        take.save_manifest()

    def resume(self, ctx: RunContext, settings: dict[str, Any]) -> Generator[StageProgress | FitProgress, None, None]:
        yield from encode_take(ctx.take, ctx.source, ctx.observations, ctx.model, self.runtime, window=self.window,
                               cancel=ctx.cancel)
        ctx.take.manifest.fit.status = COMPLETE
        ctx.take.save_manifest()
