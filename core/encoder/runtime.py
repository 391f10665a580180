"""Run a trained encoder on face crops: onnxruntime on the CPU when it is installed (about 5x
faster than eager torch for MobileNetV2 on this class of CPU; see benchmarks/bench_encoder.py),
torch otherwise and on a GPU.

    runtime = EncoderRuntime.from_checkpoint("TAKE/encoder/encoder.pt")
    out = runtime.predict(crops)  # crops: N x S x S x 3 uint8 RGB, S = runtime.input_size
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import torch

from core.encoder.checkpoint import load_encoder
from core.encoder.model import OUTPUT_NAMES, EncoderOutput, FaceEncoder
from core.errors import EncoderError
from core.onnx_session import cpu_session, onnxruntime_available

log = logging.getLogger(__name__)

BACKENDS = ("auto", "onnxruntime", "torch")


def crops_to_tensor(crops: np.ndarray, size: int) -> torch.Tensor:
    """N x H x W x 3 uint8 RGB crops -> N x 3 x size x size float32 in [0, 1] (resized with area
    averaging when shrinking, bilinear when enlarging)."""
    crops = np.asarray(crops)
    if crops.ndim != 4 or crops.shape[-1] != 3:
        raise EncoderError(f"face crops must be N x H x W x 3 RGB, got shape {crops.shape}")
    if crops.shape[1:3] != (size, size):
        shrink = crops.shape[1] > size
        crops = np.stack([cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
                          for c in crops]) if len(crops) else np.zeros((0, size, size, 3), np.uint8)
    x = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float()
    return x / 255.0 if crops.dtype == np.uint8 else x


class EncoderRuntime:
    """A loaded encoder and the engine that runs it. backend: "auto" (onnxruntime on the CPU when
    available, else torch), "onnxruntime" or "torch". threads: CPU threads of the engine (None:
    the engine's default)."""

    def __init__(self, encoder: FaceEncoder, *, meta: dict | None = None, device: str = "cpu",
                 backend: str = "auto", threads: int | None = None, batch_size: int = 16) -> None:
        if backend not in BACKENDS:
            raise EncoderError(f"unknown encoder backend '{backend}': use one of {', '.join(BACKENDS)}")
        self.encoder = encoder.eval().to(device)
        self.meta = dict(meta or {})
        self.device = device
        self.input_size = encoder.config.input_size
        self.batch_size = batch_size
        self.threads = threads
        if backend == "auto":
            backend = "onnxruntime" if device == "cpu" and onnxruntime_available() else "torch"
        if backend == "onnxruntime" and not onnxruntime_available():
            raise EncoderError("the onnxruntime backend was asked for but onnxruntime is not installed")
        self.backend = backend
        self._session = self._make_session() if backend == "onnxruntime" else None
        log.info("encoder %s on %s via %s", encoder.config.backbone, device, backend)

    @classmethod
    def from_checkpoint(cls, path: str | Path, **kwargs) -> EncoderRuntime:
        device = kwargs.get("device", "cpu")
        loaded = load_encoder(path, device=device)
        return cls(loaded.encoder, meta=loaded.meta, **kwargs)

    def _make_session(self):
        from core.encoder.onnx_export import onnx_bytes

        return cpu_session(onnx_bytes(self.encoder), self.threads)

    def run(self, images: torch.Tensor) -> EncoderOutput:
        """images: N x 3 x S x S float32 in [0, 1] -> NumPy EncoderOutput (batches of batch_size)."""
        parts: list[tuple[np.ndarray, ...]] = []
        for start in range(0, len(images), self.batch_size):
            batch = images[start:start + self.batch_size]
            if self._session is not None:
                parts.append(tuple(self._session.run(list(OUTPUT_NAMES), {"images": batch.numpy()})))
            else:
                with torch.inference_mode():
                    parts.append(tuple(t.float().cpu().numpy() for t in self.encoder(batch.to(self.device))))
        if not parts:
            return EncoderOutput.empty(self.encoder.config)
        return EncoderOutput.concatenate([EncoderOutput.from_tuple(p) for p in parts])

    def predict(self, crops: np.ndarray) -> EncoderOutput:
        """crops: N x H x W x 3 uint8 RGB aligned face crops (core/observe/align.py) -> NumPy
        EncoderOutput of the N faces (crop-space pose)."""
        return self.run(crops_to_tensor(crops, self.input_size))
