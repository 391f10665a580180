"""Choose the compute device once: a CUDA GPU when present, else the CPU."""

from __future__ import annotations

import logging

from core.errors import DeviceError

log = logging.getLogger(__name__)


def select_device(requested: str = "auto") -> str:
    """Resolve ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` to a torch device string.

    Raises DeviceError when a GPU is asked for and none is usable."""
    requested = requested.strip().lower()
    if requested == "cpu":
        return "cpu"
    if requested != "auto" and not requested.startswith("cuda"):
        raise DeviceError(f"unknown device '{requested}': use auto, cpu, cuda or cuda:N")
    import torch

    if not torch.cuda.is_available():
        if requested == "auto":
            return "cpu"
        raise DeviceError(f"device '{requested}' asked for, but no CUDA GPU is usable here")
    if requested == "auto":
        requested = "cuda:0"
    index = int(requested.split(":")[1]) if ":" in requested else 0
    if index >= torch.cuda.device_count():
        raise DeviceError(f"device '{requested}' asked for, but only {torch.cuda.device_count()} GPU(s) exist")
    log.info("compute device: %s (%s)", requested, torch.cuda.get_device_name(index))
    return f"cuda:{index}"
