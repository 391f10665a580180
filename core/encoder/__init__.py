"""Learned regressors: an aligned face crop -> face-model parameters and emotion.

- ``mobilenet`` / ``resnet``: MobileNetV2 and ResNet-50 backbones in plain PyTorch (torchvision
  does not import beside the CPU torch here). No pretrained weights exist offline: encoders are
  trained from scratch, practical for one performer by distilling a fitted take
  (``emocap train-actor``, training/actor.py).
- ``model``: FaceEncoder, heads for every parameter group of the chosen face model (open model or
  FLAME) plus an emotion branch (8 classes, valence, arousal).
- ``crop_space``: pose and camera between image space (takes) and crop space (the encoder's view).
- ``checkpoint``: atomic save, load by path. ``onnx_export``: ONNX export. ``runtime``: inference
  through onnxruntime on the CPU when available. ``predict`` / ``stage``: a clip's crops -> FitParams,
  the pipeline's ``--method encoder``.

The names below load their submodule on first use, so that importing ``core.encoder.config``
(the command line's parser does) does not load torch.
"""

import importlib

_LAZY = {
    "LoadedEncoder": "checkpoint", "load_encoder": "checkpoint", "save_encoder": "checkpoint",
    "BACKBONES": "config", "PARAM_GROUPS": "config", "EncoderConfig": "config",
    "OUTPUT_NAMES": "model", "EncoderOutput": "model", "FaceEncoder": "model",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"core.encoder.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'core.encoder' has no attribute '{name}'")


__all__ = sorted(_LAZY)
