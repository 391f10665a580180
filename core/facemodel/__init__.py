"""Face models: one FLAME-style articulated model, loaded from FLAME files or the built-in open model.

The names below load on first use (PEP 562), so that reading the open model's file (``emocap
models list``) does not import torch with the model code.
"""

from __future__ import annotations

import importlib

_HOMES = {"FaceModel": "core.facemodel.model", "FaceModelData": "core.facemodel.types",
          "FaceModelOutput": "core.facemodel.types", "FaceParams": "core.facemodel.types",
          "JOINT_NAMES": "core.facemodel.types"}

__all__ = ["FaceModel", "FaceModelData", "FaceModelOutput", "FaceParams", "JOINT_NAMES"]


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
