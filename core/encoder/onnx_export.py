"""Export a FaceEncoder to ONNX (``torch.onnx.export``) for onnxruntime.

The TorchScript-based exporter (``dynamo=False``) is used: the torch.export-based default of
torch 2.9+ needs the extra ``onnxscript`` package, and this network (convolutions, BatchNorm in
eval mode, linear layers) exports exactly either way. The batch dimension is dynamic; the input
side is the encoder's ``input_size``. Input "images": B x 3 x S x S float32 in [0, 1]; outputs:
OUTPUT_NAMES (core/encoder/model.py).
"""

from __future__ import annotations

import copy
import io
import warnings
from pathlib import Path

import torch

from core.atomic import write_bytes_atomic
from core.encoder.model import OUTPUT_NAMES, FaceEncoder

OPSET = 17


def onnx_bytes(encoder: FaceEncoder) -> bytes:
    """The encoder (eval mode, on the CPU) as a serialised ONNX model."""
    module = copy.deepcopy(encoder).cpu().eval()
    size = module.config.input_size
    example = torch.zeros(1, 3, size, size)
    buffer = io.BytesIO()
    axes = {"images": {0: "batch"}} | {name: {0: "batch"} for name in OUTPUT_NAMES}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        torch.onnx.export(module, (example,), buffer, dynamo=False, input_names=["images"],
                          output_names=list(OUTPUT_NAMES), dynamic_axes=axes, opset_version=OPSET)
    return buffer.getvalue()


def export_onnx(encoder: FaceEncoder, path: str | Path) -> Path:
    """Write the encoder as an ONNX file at ``path`` (atomically); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, onnx_bytes(encoder))
    return path
