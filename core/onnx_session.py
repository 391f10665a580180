"""Small torch networks run on the CPU by onnxruntime, which is several times faster than eager
torch for them and, on one thread, does not fall off a cliff when other work shares the cores
(measured on this 2-core machine for the FER mini-Xception: torch 1.7 ms/face on 2 threads, 2.3 on
one, 110 with another process busy; onnxruntime 0.34 ms/face on one thread).

The TorchScript-based exporter (``dynamo=False``) is used: the torch.export-based default of torch
2.9+ needs the extra ``onnxscript`` package, and these networks (convolutions, BatchNorm in eval
mode, linear layers) export exactly either way. The batch dimension is dynamic.
"""

from __future__ import annotations

import copy
import io
import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch

from core.atomic import write_bytes_atomic

log = logging.getLogger(__name__)

OPSET = 17

T = TypeVar("T")


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def module_to_onnx(module: torch.nn.Module, example: torch.Tensor, input_name: str,
                   output_names: list[str]) -> bytes:
    """``module`` (a copy, in eval mode, on the CPU) as a serialised ONNX model with one input of
    ``example``'s shape, its first dimension (the batch) dynamic, and ``output_names``."""
    buffer = io.BytesIO()
    axes = {input_name: {0: "batch"}} | {name: {0: "batch"} for name in output_names}
    # The exporter runs the module once; on one thread, as on two it can take 10x longer when other
    # work shares the cores (EmoNet: 0.7 s against 2-6 s).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with warnings.catch_warnings():
            # the legacy exporter's deprecation notice, and a ScriptModule's .cpu() on its .grad
            warnings.simplefilter("ignore")
            module = copy.deepcopy(module).cpu().eval()
            torch.onnx.export(module, (example.cpu(),), buffer, dynamo=False, input_names=[input_name],
                              output_names=list(output_names), dynamic_axes=axes, opset_version=OPSET)
    finally:
        torch.set_num_threads(threads)
    return buffer.getvalue()


def cpu_session(onnx: bytes, threads: int | None = None):
    """An onnxruntime InferenceSession of ``onnx`` on the CPU (``threads``: its intra-op threads;
    None: onnxruntime's default)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    return ort.InferenceSession(onnx, options, providers=["CPUExecutionProvider"])


def kept_cpu_session(path: Path, export: Callable[[], bytes], threads: int | None = None):
    """:func:`cpu_session` of the ONNX model an earlier process kept at ``path``, else of
    ``export()``, which is then kept there (see :func:`kept_model`)."""
    return kept_model(path, export, lambda onnx: cpu_session(onnx, threads))


def kept_model(path: Path, export: Callable[[], bytes], load: Callable[[bytes], T]) -> T:
    """``load`` of the ONNX model an earlier process kept at ``path``, else of ``export()``,
    which is then kept there (written atomically) for the next process: exporting costs every
    analysis 0.1-0.8 s and loads torch's exporter. A kept file ``load`` cannot use is exported
    again; a folder that cannot be written only costs the export."""
    try:
        return load(path.read_bytes())
    except FileNotFoundError:
        pass
    except Exception as err:  # unreadable, or not a model: the runtimes raise their own exception types
        log.warning("the exported model %s cannot be used (%s); exporting it again", path, err)
    onnx = export()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, onnx)
    except OSError as err:
        log.info("the exported model could not be kept in %s (%s)", path.parent, err)
    return load(onnx)
