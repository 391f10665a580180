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

import numpy as np

from core.encoder.config import EncoderConfig
from core.encoder.crop_space import scaled_transforms
from core.encoder.model import EncoderOutput
from core.encoder.predict import to_fit_params
from core.encoder.runtime import EncoderRuntime
from core.errors import CancelledError, EncoderError
from core.facemodel.model import FaceModel
from core.fit.params import PER_FRAME, FitParams
from core.observe.align import warp_crop
from core.results import FitProgress, StageProgress
from core.take import Take
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


def encode_take(take: Take, source: FrameSource, model: FaceModel, runtime: EncoderRuntime, *, window: int,
                cancel: threading.Event | None = None) -> Generator[StageProgress | FitProgress, None, None]:
    """Predict every face frame of the take, then store the parameters window by window in
    TAKE/fit/ (identity.npz and <first frame>.npz, as the fitter does)."""
    observations = take.load_observations()
    crop_size = float(take.manifest.settings.get("crop_size", 256))
    size = runtime.input_size
    rows = np.nonzero(observations.has_face)[0]
    row_of_index = {int(observations.index[r]): r for r in rows}
    transforms = scaled_transforms(observations.crop_transform, crop_size, size)
    outputs, done_rows, pending, pending_rows = [], [], [], []

    def flush() -> None:
        if pending:
            outputs.append(runtime.predict(np.stack(pending)))
            done_rows.extend(pending_rows)
            pending.clear()
            pending_rows.clear()

    if len(rows):
        first, last = int(observations.index[rows[0]]), int(observations.index[rows[-1]])
        for index, image in source.iter_frames(first, last + 1):
            row = row_of_index.get(index)
            if row is None:
                continue
            if cancel is not None and cancel.is_set():
                raise CancelledError("encoding cancelled; run again to redo it")
            pending.append(warp_crop(image, transforms[row], size))
            pending_rows.append(row)
            if len(pending) == runtime.batch_size:
                flush()
                yield StageProgress("encoding", len(done_rows), len(rows))
        flush()
    merged = EncoderOutput.concatenate(outputs) if outputs else EncoderOutput.empty(runtime.encoder.config)
    params = to_fit_params(merged, np.array(done_rows, np.int64), observations, model, crop_size)
    take.reset_fit()
    take.write_fit_arrays("identity", {"identity": params.identity})
    total = len(observations)
    for start in range(0, total, window):
        part = FitParams(identity=params.identity, **{k: getattr(params, k)[start:start + window] for k in PER_FRAME})
        take.write_fit_arrays(f"{start:08d}", part.to_npz_dict())
        yield FitProgress(part, min(start + window, total), total)
    log.info("encoded %d face frames; mean landmark residual %.4f IOD", len(done_rows),
             float(np.nanmean(params.residual)) if len(done_rows) else float("nan"))
