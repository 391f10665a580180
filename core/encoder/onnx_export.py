"""Export a FaceEncoder to ONNX for onnxruntime (core/onnx_session.py). Input "images":
B x 3 x S x S float32 in [0, 1], S the encoder's ``input_size``; outputs: OUTPUT_NAMES
(core/encoder/model.py).
"""

from __future__ import annotations

from pathlib import Path

import torch

from core.atomic import write_bytes_atomic
from core.encoder.model import OUTPUT_NAMES, FaceEncoder
from core.onnx_session import module_to_onnx


def onnx_bytes(encoder: FaceEncoder) -> bytes:
    """The encoder (eval mode, on the CPU) as a serialised ONNX model."""
    size = encoder.config.input_size
    return module_to_onnx(encoder, torch.zeros(1, 3, size, size), "images", list(OUTPUT_NAMES))


def export_onnx(encoder: FaceEncoder, path: str | Path) -> Path:
    """Write the encoder as an ONNX file at ``path`` (atomically); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, onnx_bytes(encoder))
    return path
